"""What the board's dealer file takes from the running rules policy (rules `GET /v1/policy`), so
that notify's chart restates no policy value."""

from __future__ import annotations

from pydantic import BaseModel, Field

SHOWN_WEEKS = 104  # the chart's longest view
MAX_BASELINE_WEEKS = 26  # the longest baseline a policy may name: notify keeps sales for both


class DealerFileView(BaseModel):
    baseline_weeks: int = Field(
        ge=0, le=MAX_BASELINE_WEEKS, description="Weeks averaged into a week's baseline (0: the policy names no baseline)."
    )
    drop_below: float = Field(gt=0, le=1, description="A week under this share of its baseline is marked.")


class PolicyView(BaseModel):
    version: str
    timezone: str = Field(description="The policy's calendar: weeks start on Monday there.")
    dealer_file: DealerFileView
