"""The format of a policy's test file (`policies/default.test.yaml`): cases of events in and
alerts expected out, like `promtool test rules`. `dealerwatch policy test --schema` prints it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.durations import DURATION

Moment = dt.datetime | dt.date  # a date alone: the start of that day in the policy's time zone
MAX_CASES = 1000
MAX_GENERATED = 20_000  # events one entry may generate
MAX_ID_LENGTH = 128  # as the events' ids


class Within(BaseModel):
    """Bounds, both included; either may be left out."""

    model_config = ConfigDict(extra="forbid")
    after: Moment | None = Field(default=None, description="At or after this moment.")
    before: Moment | None = Field(default=None, description="At or before this moment.")


class EventEntry(BaseModel):
    """One event (`at`), or the same event generated `every` so long `from` a moment `until` another
    (both included). `event` holds the event's fields but its id, dealer and time (given here)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    event: dict[str, Any] = Field(description="type and the fields of the v1 event, e.g. {type: sale, amount: 1000, ...}")
    at: Moment | None = Field(default=None, description="When; a date alone is that day at 12:00 in the policy's zone.")
    every: str | None = Field(default=None, pattern=DURATION, description="e.g. 1d, 14d, 12h")
    from_: Moment | None = Field(default=None, alias="from", description="The first generated event (a date: at 12:00).")
    until: Moment | None = Field(default=None, description="No generated event after this (a date: its 12:00 included).")
    dealer: str | None = Field(default=None, max_length=MAX_ID_LENGTH, description="Default: the case's dealer.")

    @model_validator(mode="after")
    def _one_way(self) -> EventEntry:
        if (self.at is None) == (self.every is None):
            raise ValueError("give either `at`, or `every` with `from` and `until`")
        if self.every is not None and (self.from_ is None or self.until is None):
            raise ValueError("`every` needs `from` and `until`")
        return self


class Expected(BaseModel):
    """An alert the case must raise: a rule's episode for a dealer (and subject), opened, and
    resolved or still open, at given moments or within bounds."""

    model_config = ConfigDict(extra="forbid")
    rule: str
    dealer: str | None = Field(default=None, description="Default: the case's dealer.")
    subject: str | None = Field(default=None, description="The promotion, outlet, plan, feedback, support or incentive id.")
    opened: Moment | Within | None = Field(default=None, description="When it opens (left out: at any time).")
    resolved: Moment | Within | Literal[False] | None = Field(
        default=None, description="When it resolves; false: still open at `now`; left out: either."
    )


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    dealer: str = Field(default="D1", max_length=MAX_ID_LENGTH, description="The dealer of the events and alerts by default.")
    now: Moment = Field(description="Where the clock stops: every deadline up to it is judged.")
    events: list[EventEntry] = Field(default_factory=list)
    expect: list[Expected] = Field(default_factory=list)
    quiet: list[str] | Literal["others"] = Field(
        default_factory=list,
        description="Rules that must raise nothing; `others`: every rule not named in `expect`. "
        "A rule named in `expect` must raise nothing else.",
    )


class TestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str | None = Field(
        default=None, description="The policy, relative to this file; default: this file's name without `.test`."
    )
    definitions: Any = Field(default=None, description="Read by nobody: a place for the YAML anchors (&name) cases repeat.")
    tests: list[Case] = Field(min_length=1, max_length=MAX_CASES)

    def policy_path(self, test_file: str | Path) -> Path:
        here = Path(test_file)
        if self.policy is not None:
            return here.parent / self.policy
        name = here.name.replace(".test.yaml", ".yaml").replace(".test.yml", ".yml")
        return here.parent / name
