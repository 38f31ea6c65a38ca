"""What every report shares: its period (checked, in the policy's time zone) and its rows as CSV
(`Accept: text/csv` or `?format=csv`): the same rows as the JSON, a header first, None as an
empty cell; a cell that a spreadsheet would run as a formula is prefixed with a quote (CSV
injection: dealer and rule names come from events)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Query, Request
from fastapi.responses import Response

from services.common.dealer_file import PolicyView
from services.common.events import EARLIEST, LATEST
from services.common.timeutil import utcnow

MAX_DAYS = 366
Format = Literal["json", "csv"]
FORMAT = Query(None, description="csv: the rows as CSV (as `Accept: text/csv` asks).")


async def policy_zone(policy_view: Callable[[], Awaitable[tuple[PolicyView | None, str | None]]]) -> tuple[ZoneInfo, str]:
    """The policy's time zone (days and weeks follow it), asked from the rules service."""
    policy, error = await policy_view()
    if policy is None:
        raise HTTPException(503, f"days and weeks follow the rules' policy: {error}", headers={"Retry-After": "5"})
    return ZoneInfo(policy.timezone), policy.timezone


def period(since: dt.datetime | None, until: dt.datetime | None, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Times without an offset (or dates) are the policy's time zone; default the last 30 days."""
    until = until.replace(tzinfo=until.tzinfo or zone) if until else utcnow()
    since = since.replace(tzinfo=since.tzinfo or zone) if since else until - dt.timedelta(days=30)
    for name, at in (("since", since), ("until", until)):
        if not EARLIEST <= at <= LATEST:
            raise HTTPException(422, f"{name} must be from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}")
    if since > until:
        raise HTTPException(422, "since must not be after until")
    if until - since > dt.timedelta(days=MAX_DAYS):
        raise HTTPException(422, f"a report covers at most {MAX_DAYS} days")
    return since, until


FORMULA = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(request: Request, format: str | None) -> bool:
    return format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA):
        return "'" + value
    return value


def csv_response(rows: Sequence[dict[str, Any]], columns: Sequence[str], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
