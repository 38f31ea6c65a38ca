"""Causes of a warning that can be counted (#23): the list a person picks from when resolving.

The routes file may give its own (`causes:`, each with an English and a Chinese label); without
one the default list below applies. `other` is always among them: a resolve in the shape used
before causes were counted (free text in `cause`, no `note`) is kept as cause `other` with that
text as its note, so no integration breaks. A request with a `note` names its cause by id, and an
unknown one is refused with the allowed ids.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

CAUSE_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"
OTHER = "other"


class Cause(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=CAUSE_ID, description="What reports count by, e.g. stock-out.")
    en: str = Field(min_length=1, max_length=80)
    zh: str = Field(min_length=1, max_length=80)


DEFAULT_CAUSES: tuple[Cause, ...] = (
    Cause(id="stock-out", en="Stock-out", zh="缺货"),
    Cause(id="competitor", en="Competitor", zh="竞品冲击"),
    Cause(id="dealer-cash-flow", en="Dealer cash flow", zh="经销商资金紧张"),
    Cause(id="price", en="Price", zh="价格问题"),
    Cause(id="rep-absent", en="Rep absent", zh="业务员缺位"),
    Cause(id="data-error", en="Data error", zh="数据错误"),
    Cause(id="seasonal", en="Seasonal", zh="季节性波动"),
    Cause(id=OTHER, en="Other", zh="其他"),
)


class UnknownCause(ValueError):
    pass


def resolution(cause: str, note: str | None, causes: tuple[Cause, ...]) -> tuple[str, str | None]:
    """(cause id, note) of a resolve request; UnknownCause names the allowed ids."""
    ids = [c.id for c in causes]
    if cause in ids:
        return cause, note
    if note is None:  # today's shape: the cause in words
        return OTHER, cause
    raise UnknownCause(f"unknown cause {cause!r}: use one of {', '.join(ids)}")


def with_other(causes: list[Cause]) -> tuple[Cause, ...]:
    """A configured list, `other` added if it lacks it (the legacy shape needs it)."""
    if any(c.id == OTHER for c in causes):
        return tuple(causes)
    return (*causes, next(c for c in DEFAULT_CAUSES if c.id == OTHER))
