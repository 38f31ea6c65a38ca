"""`dealerwatch events export --since --until [--dealer] [--out FILE]`: the archive of accepted
events (common/archive.py) as NDJSON, the input of `backtest`, `explain` and `policy diff`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from typing import IO, Any

from services.common import archive
from services.common.durations import DURATION, seconds
from services.common.mongo import database
from services.common.settings import Settings


def moment(text: str | None, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> dt.datetime | None:
    """`90d` (that long ago), a date (its start, UTC) or a time with its offset."""
    if text is None:
        return None
    if re.match(DURATION, text):
        return now() - dt.timedelta(seconds=seconds(text))
    try:
        found = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"{text!r}: give a duration like 90d, a date like 2026-01-01 or a time with its offset") from None
    return found if found.tzinfo is not None else found.replace(tzinfo=dt.UTC)


async def write(
    settings: Settings, out: IO[str], since: dt.datetime | None, until: dt.datetime | None, dealer: str | None
) -> int:
    client, db = database(settings)
    count = 0
    try:
        async for event in archive.read(db, since, until, dealer):
            out.write(json.dumps(event, ensure_ascii=False) + "\n")
            count += 1
    finally:
        client.close()
    return count


def add(commands: Any) -> None:
    events = commands.add_parser("events", help="the archive of accepted events").add_subparsers(dest="action", required=True)
    export = events.add_parser("export", help="archived events as NDJSON (the backtest's input), in time order")
    export.add_argument("--since", help="90d, 2026-01-01 or 2026-01-01T00:00:00Z (included)")
    export.add_argument("--until", help="the same (excluded); default: now")
    export.add_argument("--dealer", help="one dealer's events")
    export.add_argument("--out", help="a file (default: standard output)")
    export.add_argument("--mongo-url", help="else DEALERWATCH_MONGO_URL")
    export.add_argument("--database", help="else DEALERWATCH_MONGO_DB")
    export.set_defaults(func=_export)


def settings_of(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in (("mongo_url", args.mongo_url), ("mongo_db", args.database)) if v}
    return Settings(**overrides)


def _export(args: argparse.Namespace) -> int:
    since, until = moment(args.since), moment(args.until)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            count = asyncio.run(write(settings_of(args), handle, since, until, args.dealer))
    else:
        count = asyncio.run(write(settings_of(args), sys.stdout, since, until, args.dealer))
    print(f"exported {count:,} events", file=sys.stderr)
    return 0
