"""A rule as people read it (the board's policy view): its condition, the thresholds in it and
its summaries by language."""

from __future__ import annotations

from typing import Any

from .. import expressions as ex
from ..policy import CompiledRule


def thresholds(node: ex.Value | ex.Condition) -> list[float]:
    """The numbers the condition compares with, in the order written."""
    if isinstance(node, ex.Number):
        return [node.value]
    if isinstance(node, (ex.Arith, ex.Compare)):
        return thresholds(node.left) + thresholds(node.right)
    if isinstance(node, ex.Logic):
        return [n for item in node.items for n in thresholds(item)]
    if isinstance(node, ex.Not):
        return thresholds(node.item)
    return []


def rule_view(rule: CompiledRule) -> dict[str, Any]:
    spec = rule.spec
    return {
        "rule_id": spec.id,
        "description": " ".join(spec.description.split()),
        "severity": spec.severity,
        "kind": spec.kind,
        "scope": spec.scope,
        "trigger": list(spec.trigger),
        "when": " ".join(spec.when.split()),
        "measures": sorted(ex.measures_of(rule.condition)),
        "thresholds": thresholds(rule.condition),
        "summaries": {language: " ".join(text.split()) for language, text in spec.summaries.items()},
    }
