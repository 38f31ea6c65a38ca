"""Event contract v1: what upstream POS/ERP systems post to ingest.

Every model forbids unknown fields so that a typo in an integration surfaces as
an error naming the field instead of being silently ignored.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .limits import MAX_PROMOTION_DAYS, MAX_SUPPORT_DAYS

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Tier = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f]+$")]
Phone = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 ()-]*$")]
VisitKind = Literal["routine", "leadership", "symposium"]

# Bounds that every stage carries exactly: JSON, BSON (int64, double), the rules engine and the
# calendar. Ingest also refuses events too far ahead of its clock or before a configured time.
MAX_AMOUNT = Decimal(10) ** 12  # a trillion
AMOUNT_DIGITS = 15  # significant digits a double keeps
MAX_COUNT = 10**9
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _amount(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if abs(value) > MAX_AMOUNT:
        raise ValueError(f"must be between -{MAX_AMOUNT:,} and {MAX_AMOUNT:,}")
    if value and len(value.normalize().as_tuple().digits) > AMOUNT_DIGITS:
        raise ValueError(f"has more than {AMOUNT_DIGITS} significant digits")
    return value


def _moment(value: dt.datetime) -> dt.datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


def _day(value: dt.date) -> dt.date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


def _share(value: Decimal) -> Decimal:
    if not value.is_finite() or not 0 <= value <= 1:
        raise ValueError("must be a share from 0 to 1 (0.8 = 80%)")
    return _amount(value)


def _span(starts_on: dt.date | None, ends_on: dt.date, most: int, what: str) -> dt.date:
    """ends_on of a span of days from starts_on (both included), at most `most` days long."""
    if starts_on is not None and ends_on < starts_on:
        raise ValueError("ends_on must not be before starts_on")
    if starts_on is not None and (ends_on - starts_on).days + 1 > most:
        raise ValueError(f"{what} lasts at most {most} days (starts_on to ends_on, both included)")
    return ends_on


Amount = Annotated[Decimal, AfterValidator(_amount)]
Share = Annotated[Decimal, AfterValidator(_share)]
Moment = Annotated[AwareDatetime, AfterValidator(_moment)]
Day = Annotated[dt.date, AfterValidator(_day)]


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id = Field(description="Unique per event; the idempotency key for retries.")
    dealer_id: Id
    occurred_at: Moment = Field(
        description="Event time, RFC 3339 with offset; from 2000-01-01, at most "
        "DEALERWATCH_MAX_FUTURE_SECONDS (a day) ahead of ingest's clock."
    )
    source: str | None = Field(default=None, max_length=128, description="Posting system.")
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f]+$",
        description="The dealer's sales region, if the posting system knows it; the latest one given is the "
        "dealer's region, a label on its alerts (routes, silences, the board's filter).",
    )


class Sale(_EventBase):
    type: Literal["sale"]
    outlet_id: Id | None = Field(default=None, description="Retailer or sub-distributor sold to.")
    sku: Id
    quantity: int = Field(ge=-MAX_COUNT, le=MAX_COUNT, description="Units; negative for a return, never 0.")
    amount: Amount = Field(description="Net amount; negative for a return.")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")

    @field_validator("quantity")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("quantity must not be 0 (use a negative quantity for returns)")
        return value


class Visit(_EventBase):
    type: Literal["visit"]
    visitor_id: Id
    role: Literal["rep", "supervisor", "executive"]
    kind: VisitKind
    outlet_id: Id | None = None
    plan_id: Id | None = Field(default=None, description="The visit plan this visit carries out, if the posting system knows it.")


class PromotionPlanned(_EventBase):
    type: Literal["promotion.planned"]
    promotion_id: Id
    budget: Amount = Field(gt=0)
    starts_on: Day
    ends_on: Day
    owner: Id = Field(description="The person responsible for the promotion.")
    description: str | None = Field(default=None, max_length=2000)
    expected_sales: Amount | None = Field(
        default=None, gt=0, description="The net sales the owner expects during the promotion (judged when it ends)."
    )

    @field_validator("ends_on")
    @classmethod
    def _ends_after_start(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        return _span(info.data.get("starts_on"), value, MAX_PROMOTION_DAYS, "a promotion")


class PromotionApproved(_EventBase):
    type: Literal["promotion.approved"]
    promotion_id: Id
    approved_by: Id


class PromotionSpend(_EventBase):
    type: Literal["promotion.spend"]
    promotion_id: Id
    amount: Amount = Field(gt=0)


class PromotionEnded(_EventBase):
    type: Literal["promotion.ended"]
    promotion_id: Id


class TargetSet(_EventBase):
    type: Literal["target.set"]
    period: str = Field(pattern=r"^20\d{2}-(0[1-9]|1[0-2])$", description="Calendar month, YYYY-MM (2000 to 2099).")
    sales_target: Amount = Field(ge=0)
    active_outlets_target: int = Field(ge=0, le=MAX_COUNT)
    outlet_coverage_target: Share | None = Field(
        default=None, description="Share of the dealer's registered open outlets that should buy in any 30 days (0 to 1)."
    )


class DealerRegistered(_EventBase):
    """The dealer's master data (经销商档案); `region` is the dealer's region."""

    type: Literal["dealer.registered"]
    name: Name
    tier: Tier | None = Field(default=None, description="e.g. A, B, C.")
    contact_name: Name | None = None  # an ERP often has no contact person for a dealer (#23)
    phone: Phone | None = None


class DealerUpdated(_EventBase):
    """Any of dealer.registered's fields: what is given replaces what was there."""

    type: Literal["dealer.updated"]
    name: Name | None = None
    tier: Tier | None = None
    contact_name: Name | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _something_given(self) -> DealerUpdated:
        if all(getattr(self, name) is None for name in ("name", "tier", "contact_name", "phone", "region")):
            raise ValueError("give at least one of name, tier, contact_name, phone, region")
        return self


class OutletRegistered(_EventBase):
    """An outlet (sub-distributor 二批 or retail) that buys from `dealer_id`; `region` is the outlet's."""

    type: Literal["outlet.registered"]
    outlet_id: Id
    name: Name
    level: Literal["sub-distributor", "retail"]
    region: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$", description="The outlet's region."
    )


class OutletClosed(_EventBase):
    """The outlet is no longer part of the dealer's network from `occurred_at` on."""

    type: Literal["outlet.closed"]
    outlet_id: Id


class VisitPlanned(_EventBase):
    type: Literal["visit.planned"]
    plan_id: Id
    planned_for: Day
    visitor_id: Id = Field(description="Who is to visit: the owner of a missed plan's alert.")
    kind: VisitKind
    outlet_id: Id | None = None


class VisitPlanCancelled(_EventBase):
    type: Literal["visit.plan_cancelled"]
    plan_id: Id


FeedbackChannel = Literal["symposium", "visit", "publication", "hotline", "other"]


class FeedbackReceived(_EventBase):
    """What a dealer said (座谈会, a visit, the internal publication, the hotline): it waits for an answer."""

    type: Literal["feedback.received"]
    feedback_id: Id
    channel: FeedbackChannel
    topic: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    received_by: Id | None = Field(default=None, description="Who took it down (the alert's owner while unanswered).")


class FeedbackAnswered(_EventBase):
    type: Literal["feedback.answered"]
    feedback_id: Id
    by: Id
    text: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


SupportKind = Literal["rep", "supervisor", "promoter", "vehicle"]


class SupportDispatched(_EventBase):
    """People or a vehicle sent to the dealer (#24): judged by its effect when it ends."""

    type: Literal["support.dispatched"]
    support_id: Id
    kind: SupportKind
    starts_on: Day
    ends_on: Day
    cost: Amount = Field(ge=0, description="What the support costs in all.")
    dealer_share: Share = Field(description="The part of the cost the dealer pays (0 to 1).")
    owner: Id = Field(description="Who decided it: the owner of its alerts.")
    reason: str | None = Field(default=None, max_length=500, description="Why, e.g. the alert id it answers.")

    @field_validator("ends_on")
    @classmethod
    def _ends_after_start(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        return _span(info.data.get("starts_on"), value, MAX_SUPPORT_DAYS, "a support")


class SupportEnded(_EventBase):
    """Ends a support before its ends_on (otherwise it ends with its last day)."""

    type: Literal["support.ended"]
    support_id: Id


Event = Annotated[
    Sale
    | Visit
    | PromotionPlanned
    | PromotionApproved
    | PromotionSpend
    | PromotionEnded
    | TargetSet
    | DealerRegistered
    | DealerUpdated
    | OutletRegistered
    | OutletClosed
    | VisitPlanned
    | VisitPlanCancelled
    | FeedbackReceived
    | FeedbackAnswered
    | SupportDispatched
    | SupportEnded,
    Field(discriminator="type"),
]
event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def _type_of(model: type[BaseModel]) -> str:
    return str(get_args(model.model_fields["type"].annotation)[0])


# derived from `Event`, the one list of the event models: a new type is added there only
EVENT_MODELS: dict[str, type[BaseModel]] = {_type_of(model): model for model in get_args(get_args(Event)[0])}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)


def parse_event(data: bytes | str | dict[str, Any]) -> Event:
    """Validate one event from JSON text or a decoded object (raises pydantic.ValidationError)."""
    if isinstance(data, dict):
        return event_adapter.validate_python(data)
    return event_adapter.validate_json(data)
