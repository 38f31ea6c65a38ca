"""Event contract v1: what upstream POS/ERP systems post to ingest.

Every model forbids unknown fields so that a typo in an integration surfaces as
an error naming the field instead of being silently ignored.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
)

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id = Field(description="Unique per event; the idempotency key for retries.")
    dealer_id: Id
    occurred_at: AwareDatetime = Field(description="Event time, RFC 3339 with offset.")
    source: str | None = Field(default=None, max_length=128, description="Posting system.")
    region: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$",
        description="The dealer's sales region, if the posting system knows it; the latest one given is the "
        "dealer's region, a label on its alerts (routes, silences, the board's filter).",
    )


class Sale(_EventBase):
    type: Literal["sale"]
    outlet_id: Id | None = Field(default=None, description="Retailer or sub-distributor sold to.")
    sku: Id
    quantity: int = Field(description="Units; negative for a return, never 0.")
    amount: Decimal = Field(description="Net amount; negative for a return.")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")

    @field_validator("quantity")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("quantity must not be 0 (use a negative quantity for returns)")
        return value

    @field_validator("amount")
    @classmethod
    def _finite(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("amount must be a finite number")
        return value


class Visit(_EventBase):
    type: Literal["visit"]
    visitor_id: Id
    role: Literal["rep", "supervisor", "executive"]
    kind: Literal["routine", "leadership", "symposium"]
    outlet_id: Id | None = None


class PromotionPlanned(_EventBase):
    type: Literal["promotion.planned"]
    promotion_id: Id
    budget: Decimal = Field(gt=0, allow_inf_nan=False)
    starts_on: dt.date
    ends_on: dt.date
    owner: Id = Field(description="The person responsible for the promotion.")
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("ends_on")
    @classmethod
    def _ends_after_start(cls, value: dt.date, info) -> dt.date:
        starts_on = info.data.get("starts_on")
        if starts_on is not None and value < starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return value


class PromotionApproved(_EventBase):
    type: Literal["promotion.approved"]
    promotion_id: Id
    approved_by: Id


class PromotionSpend(_EventBase):
    type: Literal["promotion.spend"]
    promotion_id: Id
    amount: Decimal = Field(gt=0, allow_inf_nan=False)


class PromotionEnded(_EventBase):
    type: Literal["promotion.ended"]
    promotion_id: Id


class TargetSet(_EventBase):
    type: Literal["target.set"]
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="Calendar month, YYYY-MM.")
    sales_target: Decimal = Field(ge=0, allow_inf_nan=False)
    active_outlets_target: int = Field(ge=0)


Event = Annotated[
    Union[
        Sale,
        Visit,
        PromotionPlanned,
        PromotionApproved,
        PromotionSpend,
        PromotionEnded,
        TargetSet,
    ],
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "sale",
    "visit",
    "promotion.planned",
    "promotion.approved",
    "promotion.spend",
    "promotion.ended",
    "target.set",
)
event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_MODELS: dict[str, type[BaseModel]] = {
    model.model_fields["type"].annotation.__args__[0]: model
    for model in (Sale, Visit, PromotionPlanned, PromotionApproved, PromotionSpend, PromotionEnded, TargetSet)
}


def parse_event(data: bytes | str | dict) -> Event:
    """Validate one event from JSON text or a decoded object (raises pydantic.ValidationError)."""
    if isinstance(data, dict):
        return event_adapter.validate_python(data)
    return event_adapter.validate_json(data)
