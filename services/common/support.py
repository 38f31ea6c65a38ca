"""Where support is needed most (#24): the one definition of a dealer's priority score.

rules computes the gaps from the dealer's measures when it judges the dealer (named by the
policy's `support:` section) and sends them when they change (`DealerStanding`); notify adds
the weights of the dealer's open alerts and keeps the score, so a ranking is one indexed read.

    target_gap   = max(0, target x elapsed - to_date)     (0 without a target)
    baseline_gap = max(0, baseline - recent)              (0 without a baseline)
    score        = (target_gap + baseline_gap) x (1 + sum of the open alerts' severity weights)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    critical: float = Field(default=1.0, ge=0, le=100)
    warning: float = Field(default=0.5, ge=0, le=100)
    info: float = Field(default=0.1, ge=0, le=100)

    def of(self, severity: str) -> float:
        return float(getattr(self, severity, 0.0))


class SupportMeasures(BaseModel):
    """The measures the gaps are made of (any measure of the policy, built in or declared)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    target: str = Field(default="month_sales_target", description="The month's sales target.")
    elapsed: str = Field(default="month_fraction_elapsed", description="The share of the target's period gone by.")
    to_date: str = Field(default="sales_mtd", description="Sales so far in the target's period.")
    baseline: str = Field(default="sales_baseline_weekly", description="A normal week's sales.")
    recent: str = Field(default="sales_7d", description="The last week's sales.")


def target_gap(values: Mapping[str, float], names: SupportMeasures) -> float:
    target, elapsed = values.get(names.target), values.get(names.elapsed)
    if target is None or elapsed is None:
        return 0.0
    return max(0.0, target * elapsed - values.get(names.to_date, 0.0))


def baseline_gap(values: Mapping[str, float], names: SupportMeasures) -> float:
    baseline = values.get(names.baseline)
    if baseline is None:
        return 0.0
    return max(0.0, baseline - values.get(names.recent, 0.0))


def alert_weight(severities: Iterable[str], weights: Mapping[str, float]) -> float:
    return round(sum(weights.get(s, 0.0) for s in severities), 6)


def score(target: float, baseline: float, severities: Iterable[str], weights: Mapping[str, float]) -> float:
    """weights: by severity (`Weights.model_dump()`, as a standing carries them)."""
    return round((target + baseline) * (1.0 + alert_weight(severities, weights)), 6)
