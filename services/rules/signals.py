"""Alert signals as the rules core emits them: summary text, measured values, thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from services.common.alerts import AlertSignal, DealerStanding, PromotionEvaluation, SupportEvaluation

from . import expressions as ex
from .policy import CompiledRule, render_summary
from .state import DealerState, Episode, utc

Output = AlertSignal | PromotionEvaluation | SupportEvaluation | DealerStanding  # what the rules core publishes


def make_signal(
    state: Literal["firing", "resolved"],
    rule: CompiledRule,
    dealer: DealerState,
    subject: str | None,
    episode: Episode,
    t: float,
    values: Mapping[str, float],
    owner: str | None,
    version: str,
    names: dict[str, Any] | None = None,
) -> AlertSignal:
    """The dealer's id, name and region label the signal; `names`: what the rule's scope adds to
    its summary (promotion_id, outlet_id, plan_id, ...)."""
    dealer_id, dealer_name, region = dealer.dealer_id, dealer.name, dealer.region
    fields = {"dealer_id": dealer_id, "dealer_name": dealer_name or dealer_id, "owner": owner or "unknown", **(names or {})}
    used = sorted(ex.measures_of(rule.condition))
    summaries = {
        language: " ".join(render_summary(template, {**values, **fields}).split())
        for language, template in rule.spec.summaries.items()
    }
    return AlertSignal(
        alert_id=episode.alert_id,
        state=state,
        rule_id=rule.id,
        dealer_id=dealer_id,
        dealer_name=dealer_name,
        subject=subject,
        severity=rule.spec.severity,
        summary=summaries.get("en") or next(iter(summaries.values())),
        summaries=summaries,
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


def thresholds(condition: ex.Condition, values: Mapping[str, float]) -> dict[str, float | None]:
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
    first seen); every resolve and evaluation; each dealer's last standing. A dealer judged at thousands of midnights in one
    batch (a backfill of a dealer silent for years) then publishes a handful of signals."""
    firing: dict[str, list[int]] = {}
    standings: dict[str, int] = {}
    for index, output in enumerate(outputs):
        if isinstance(output, AlertSignal) and output.state == "firing":
            firing.setdefault(output.alert_id, []).append(index)
        elif isinstance(output, DealerStanding):
            standings[output.dealer_id] = index
    dropped = {index for indexes in firing.values() for index in indexes[1:-1]}
    dropped |= {index for index, output in enumerate(outputs) if isinstance(output, DealerStanding)} - set(standings.values())
    return [output for index, output in enumerate(outputs) if index not in dropped]
