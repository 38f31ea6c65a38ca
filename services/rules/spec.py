"""The policy file format (version 1), as pydantic models. `dealerwatch policy schema` prints
the JSON Schema generated from these, so editors can validate and autocomplete policy files."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.alerts import Severity
from services.common.durations import DURATION
from services.common.events import EVENT_TYPES
from services.common.support import SupportMeasures, Weights

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Duration = str  # documented by the pattern on each field


Scalar = str | int | float | bool
Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")
SCOPES = ("dealer", "promotion", "outlet", "plan", "feedback", "support", "incentive")


class Comparison(BaseModel):
    """A test on an event field: `{gt: 0}`, `{in: [rep, supervisor]}`."""

    model_config = ConfigDict(extra="forbid")
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")


class Window(BaseModel):
    """Events with time in (t - from, t - to]."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: Duration = Field(alias="from", pattern=DURATION)
    to: Duration = Field(default="0d", pattern=DURATION)


MEASURE_KINDS = ("sum", "count", "avg", "distinct", "days_since", "latest")  # a measure names exactly one


class MeasureSpec(BaseModel):
    """Exactly one of sum / count / avg / distinct / days_since / latest."""

    model_config = ConfigDict(extra="forbid")

    sum: str | None = Field(default=None, description="Sum of this event field over the window.")
    count: EventType | None = Field(default=None, description="Number of events of this type in the window.")
    avg: str | None = Field(default=None, description="Average of this event field over the window.")
    distinct: str | None = Field(default=None, description="Number of distinct values of this field.")
    days_since: EventType | None = Field(default=None, description="Days since the last event of this type.")
    latest: str | None = Field(default=None, description="This field of the latest matching event at or before t.")
    of: EventType | None = Field(default=None, description="Event type for sum / avg / distinct / latest.")
    where: dict[str, Scalar | Comparison] = Field(default_factory=dict, description="Event filter.")
    window: Duration | Window | Literal["month_to_date"] | None = Field(
        default=None, description="`7d` = (t-7d, t]; {from: 63d, to: 7d} = (t-63d, t-7d]; month_to_date."
    )
    divide_by: float = Field(default=1.0, gt=0)
    or_first_seen: bool = Field(default=False, description="days_since: count from first seen if none yet.")
    period: Literal["month"] | None = Field(
        default=None, description="latest: only events whose `period` is the calendar month of t."
    )

    @model_validator(mode="after")
    def _one_aggregate(self) -> MeasureSpec:
        kinds = [k for k in MEASURE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a measure needs exactly one of {', '.join(MEASURE_KINDS)}")
        kind = kinds[0]
        if kind in ("sum", "avg", "distinct", "latest") and self.of is None:
            raise ValueError(f"'{kind}' needs 'of' (the event type)")
        if kind in ("sum", "count", "avg", "distinct") and self.window is None:
            raise ValueError(f"'{kind}' needs a 'window'")
        if kind in ("days_since", "latest") and self.window is not None:
            raise ValueError(f"'{kind}' takes no window")
        if isinstance(self.window, str) and self.window != "month_to_date" and not re.match(DURATION, self.window):
            raise ValueError(f"window {self.window!r} is not a duration like 7d, 12h or month_to_date")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in MEASURE_KINDS if getattr(self, k) is not None)

    @property
    def event_type(self) -> str:
        return self.of or self.count or self.days_since  # type: ignore[return-value]

    @property
    def field(self) -> str | None:
        return {"sum": self.sum, "avg": self.avg, "distinct": self.distinct, "latest": self.latest}.get(self.kind)


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Stable rule id, e.g. sales-drop.")
    description: str = Field(min_length=1)
    severity: Severity
    kind: Literal["condition", "event"] = Field(
        description="condition: resolves by itself when the condition stops holding; "
        "event: fires on an event and stays open until a person resolves it."
    )
    scope: Literal["dealer", "promotion", "outlet", "plan", "feedback", "support", "incentive"] = Field(
        default="dealer",
        description="What the measures describe: the dealer, one of its promotions, one of its registered open "
        "outlets, one of its visit plans, one item of its feedback, one support sent to it, or one incentive "
        "program in one period (one alert episode each).",
    )
    trigger: list[EventType] = Field(default_factory=list, description="event rules: the event types that trigger a judgement.")
    when: str = Field(min_length=1, description="Condition over measures, e.g. `sales_7d < 0.7 * sales_baseline_weekly`.")
    summary: str | dict[Language, str] = Field(
        description="Message template: {measure:.0f}, {dealer_id}, {dealer_name}, {owner}; one text, or one per "
        "language ({en: ..., zh: ...}): readers get theirs, the English one (or the first) otherwise."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Routing labels, e.g. region.")

    @model_validator(mode="after")
    def _event_rules_name_their_trigger(self) -> RuleSpec:
        if self.scope == "support" and self.kind != "event":
            raise ValueError("support rules are judged on its events (kind: event, trigger: support.dispatched / support.ended)")
        if self.kind == "event" and not self.trigger:
            raise ValueError("an event rule needs 'trigger': the event types it is judged on")
        if self.kind == "event" and self.scope in ("outlet", "plan", "feedback", "incentive"):
            raise ValueError(f"{self.scope} rules are conditions (kind: condition)")
        if not self.summaries or not all(text.strip() for text in self.summaries.values()):
            raise ValueError("summary must not be empty")
        return self

    @property
    def summaries(self) -> dict[str, str]:
        """The summary template by language ("en" for a single text)."""
        return {"en": self.summary} if isinstance(self.summary, str) else {str(k): v for k, v in self.summary.items()}


class DealerFileSpec(BaseModel):
    """What the board's dealer file draws, taken from this policy (never restated elsewhere)."""

    model_config = ConfigDict(extra="forbid")
    baseline: str = Field(
        default="sales_baseline_weekly",
        description="A weekly average over a window of whole weeks before t (`{from: 63d, to: 7d}, divide_by: 8`): the "
        "chart's baseline line.",
    )
    drop_below: float = Field(default=0.7, gt=0, le=1, description="A week under this share of its baseline is marked.")


class SupportSpec(BaseModel):
    """Where support is needed most (GET /v1/support/priorities): the measures its gaps are made of and the
    weight of each open alert's severity (services/common/support.py)."""

    model_config = ConfigDict(extra="forbid")
    measures: SupportMeasures = Field(default_factory=SupportMeasures)
    weights: Weights = Field(default_factory=Weights)


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_: float = Field(alias="from", ge=0, description="Net sales of the period from which this rate applies.")
    rate: float = Field(ge=0, le=1, description="Share of the period's net sales paid back (0.02 = 2%).")


class IncentiveSpec(BaseModel):
    """A rebate (返利) or annual award: tiers on a period's net sales, optionally gated on its targets."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    period: Literal["month", "quarter", "year"] = Field(description="Calendar period in the policy's time zone.")
    tiers: list[Tier] = Field(min_length=1, max_length=20)
    gate: float | None = Field(
        default=None, gt=0, le=2, description="Paid only if the period's net sales reach this share of its monthly targets' sum."
    )

    @model_validator(mode="after")
    def _tiers_ascend(self) -> IncentiveSpec:
        froms = [tier.from_ for tier in self.tiers]
        if any(b <= a for a, b in zip(froms, froms[1:], strict=False)):
            raise ValueError("tiers must be listed by `from`, each higher than the one before")
        return self


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    timezone: str = Field(default="UTC", description="Calendar time zone, e.g. Asia/Shanghai.")
    lateness: Duration = Field(
        default="7d",
        pattern=DURATION,
        description="Events older than this before the dealer's latest event are refused (dead-lettered).",
    )
    measures: dict[str, MeasureSpec] = Field(default_factory=dict, description="Named measures rules can use.")
    rules: list[RuleSpec] = Field(min_length=1)
    dealer_file: DealerFileSpec | None = Field(
        default=None, description="The board's dealer file; without it the weekly chart draws no baseline."
    )
    support: SupportSpec | None = Field(
        default=None, description="The support priorities' score; without it no dealer is ranked."
    )
    incentives: list[IncentiveSpec] = Field(default_factory=list, max_length=20, description="Rebates and awards.")
