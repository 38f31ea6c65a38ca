"""Alert messages: what the rules service tells notify.

One episode of a rule holding for a dealer (or for one of its promotions) has
one stable `alert_id`. While it holds, every evaluation that finds it still
holding sends a `firing` signal with an increasing `firing_count`; when a
condition rule stops holding, one `resolved` signal closes the episode.
Signals are idempotent, so redelivery never creates a second alert.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from .support import Weights

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


def episode_alert_id(rule_id: str, dealer_id: str, subject: str | None, opened_at: dt.datetime) -> str:
    """Deterministic id: re-evaluating the same episode after a crash yields the same alert."""
    key = "\x1f".join([rule_id, dealer_id, subject or "", opened_at.isoformat()])
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class AlertSignal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["alert-signal"] = "alert-signal"
    alert_id: str
    state: Literal["firing", "resolved"]
    rule_id: str
    dealer_id: str
    dealer_name: str | None = Field(default=None, description="The dealer's name, once registered.")
    subject: str | None = Field(default=None, description="The promotion, outlet or plan id of a scoped rule.")
    severity: Severity
    summary: str = Field(description="In English, or in the rule's one language.")
    summaries: dict[str, str] = Field(default_factory=dict, description="The summary by language (en, zh).")
    details: dict[str, Any] = Field(default_factory=dict, description="condition, measured values, thresholds")
    owner: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    policy_version: str
    opened_at: AwareDatetime = Field(description="Event time at which the episode began.")
    at: AwareDatetime = Field(description="Event time of this evaluation.")
    firing_count: int = Field(ge=0, description="Evaluations that found the rule holding so far.")


class PromotionEvaluation(BaseModel):
    """The judgement of an ended promotion, effective or not, for the dealer's file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["promotion-evaluation"] = "promotion-evaluation"
    dealer_id: str
    promotion_id: str
    owner: str | None = None
    starts_on: str | None = None
    ends_on: str | None = None
    days: float | None = Field(default=None, description="L: days from starts_on to ends_on inclusive")
    sales_during: float | None = Field(default=None, description="P: net sales from starts_on to the end of ends_on")
    sales_before: float | None = Field(default=None, description="S: net sales in the L days before starts_on")
    spend: float = Field(description="X: cumulative spend")
    budget: float | None = Field(default=None, description="The plan's budget (None: never planned)")
    unapproved_spend: float = Field(default=0.0, description="Spent while not approved (or not planned)")
    ratio: float | None = Field(default=None, description="(P - S) / X")
    expected_sales: float | None = Field(default=None, description="E: what the owner expected P to be, if given")
    expected_met: bool | None = Field(default=None, description="P >= E (None without E)")
    verdict: Literal["effective", "ineffective", "no-spend"]
    at: AwareDatetime
    policy_version: str


class SupportEvaluation(BaseModel):
    """The judgement of a support when it ends (#24): P, S and X like a promotion's, X being the
    manufacturer's part of the cost. notify adds the dealer's alerts open at its start and those
    resolved by its end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["support-evaluation"] = "support-evaluation"
    dealer_id: str
    support_id: str
    support_kind: str
    owner: str | None = None
    reason: str | None = None
    starts_on: str
    ends_on: str
    started_at: AwareDatetime = Field(description="The start of starts_on (the policy's time zone).")
    ended_at: AwareDatetime = Field(description="support.ended's time, or the end of ends_on.")
    ended_early: bool
    days: float = Field(description="L: days from its start to its end")
    sales_during: float = Field(description="P: net sales from its start to its end")
    sales_before: float = Field(description="S: net sales in as long before its start")
    cost: float
    dealer_share: float
    net_cost: float = Field(description="X = cost x (1 - dealer_share)")
    ratio: float | None = Field(default=None, description="(P - S) / X (None when X is 0)")
    verdict: Literal["effective", "ineffective", "no-cost"]
    at: AwareDatetime
    policy_version: str


class RunningSupport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    support_id: str
    support_kind: str
    ends_on: str
    days_left: int = Field(description="Days from the dealer's judgement day to ends_on, both included.")
    owner: str | None = None


class DealerStanding(BaseModel):
    """What is at stake at a dealer, as rules last judged it (#24): the parts of its support
    priority that come from its measures (services/common/support.py), sent when they change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["dealer-standing"] = "dealer-standing"
    dealer_id: str
    dealer_name: str | None = None
    region: str | None = None
    target_gap: float = Field(ge=0)
    baseline_gap: float = Field(ge=0)
    running: RunningSupport | None = Field(default=None, description="Support running at `at`, if any.")
    weights: Weights = Field(default_factory=Weights, description="The policy's weight of each open alert's severity.")
    at: AwareDatetime = Field(description="The event time the dealer was judged at.")
    policy_version: str


RulesOutput = Annotated[AlertSignal | PromotionEvaluation | SupportEvaluation | DealerStanding, Field(discriminator="kind")]
rules_output_adapter: TypeAdapter[AlertSignal | PromotionEvaluation | SupportEvaluation | DealerStanding] = TypeAdapter(
    RulesOutput
)
