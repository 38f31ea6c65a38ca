"""Alert signals as the rules core emits them: summary text, measured values, thresholds."""

from __future__ import annotations

from typing import Literal

from services.common.alerts import AlertSignal, PromotionEvaluation

from . import expressions as ex
from .policy import CompiledRule, render_summary
from .state import Episode, utc

Output = AlertSignal | PromotionEvaluation  # what the rules core publishes


def make_signal(
    state: Literal["firing", "resolved"],
    rule: CompiledRule,
    dealer_id: str,
    subject: str | None,
    episode: Episode,
    t: float,
    values: dict[str, float],
    owner: str | None,
    version: str,
    region: str | None = None,
) -> AlertSignal:
    names = {"dealer_id": dealer_id, "promotion_id": subject, "owner": owner or "unknown"}
    used = sorted(ex.measures_of(rule.condition))
    return AlertSignal(
        alert_id=episode.alert_id,
        state=state,
        rule_id=rule.id,
        dealer_id=dealer_id,
        subject=subject,
        severity=rule.spec.severity,
        summary=" ".join(render_summary(rule.spec.summary, {**values, **names}).split()),
        details={
            "condition": " ".join(rule.spec.when.split()),
            "measures": {name: _round(values.get(name)) for name in used},
            "thresholds": thresholds(rule.condition, values),
        },
        owner=owner,
        labels={**({"region": region} if region else {}), **rule.spec.labels},  # a rule's own label wins
        policy_version=version,
        opened_at=utc(episode.opened_at),
        at=utc(t),
        firing_count=episode.count,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def thresholds(condition: ex.Condition, values: dict[str, float]) -> dict[str, float | None]:
    """For each comparison `measure op expression`: the value the measure is compared with."""
    result = {}
    stack = [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, ex.Logic):
            stack.extend(node.items)
        elif isinstance(node, ex.Not):
            stack.append(node.item)
        elif isinstance(node.left, ex.Measure):
            result[f"{node.left.name} {node.op}"] = _round(ex.value_of(node.right, values))
        elif isinstance(node.right, ex.Measure):
            result[f"{node.right.name} {ex.FLIP[node.op]}"] = _round(ex.value_of(node.left, values))
    return result


def coalesce(outputs: list[Output]) -> list[Output]:
    """What a batch must publish: of the firing signals of one alert, the first and the newest
    (notify keeps the highest count and the latest values; the first says when the alert was
    first seen); every resolve and evaluation. A dealer judged at thousands of midnights in one
    batch (a backfill of a dealer silent for years) then publishes a handful of signals."""
    firing: dict[str, list[int]] = {}
    for index, output in enumerate(outputs):
        if isinstance(output, AlertSignal) and output.state == "firing":
            firing.setdefault(output.alert_id, []).append(index)
    dropped = {index for indexes in firing.values() for index in indexes[1:-1]}
    return [output for index, output in enumerate(outputs) if index not in dropped]
