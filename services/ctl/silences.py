"""`dealerwatch silences list|add|expire`: mute alerts for a while, like `amtool silence`."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any
from urllib.parse import quote

from services.common.durations import seconds

from .client import Client, Refused
from .output import emit

MATCHERS = ("rule_id", "dealer_id", "region", "severity")
COLUMNS = (
    ("id", "silence_id"),
    ("matchers", "matchers_text"),
    ("starts", "starts_at"),
    ("ends", "ends_at"),
    ("by", "created_by"),
    ("comment", "comment"),
)


def _list(args: argparse.Namespace, client: Client) -> int:
    items = client.call("GET", "/v1/silences", params={"active": "true" if args.active else None})["items"]
    for item in items:
        item["matchers_text"] = ",".join(f"{k}={v}" for k, v in item.get("matchers", {}).items() if v is not None)
    emit(items, COLUMNS, args.output)
    return 0


def matchers(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, sign, value = pair.partition("=")
        if not sign or name not in MATCHERS or not value:
            raise Refused(0, f"{pair!r}: a matcher is NAME=VALUE with NAME one of {', '.join(MATCHERS)}")
        found[name] = value
    return found


def _add(args: argparse.Namespace, client: Client) -> int:
    now = dt.datetime.now(dt.UTC)
    try:
        ends = now + dt.timedelta(seconds=seconds(args.duration))
    except ValueError as exc:
        raise Refused(0, f"--duration: {exc}") from None
    body = {"matchers": matchers(args.matchers), "ends_at": ends.isoformat(), "created_by": client.by, "comment": args.comment}
    silence = client.call("POST", "/v1/silences", body=body)
    print(f"{silence['silence_id']}  until {silence['ends_at']}  ({silence.get('open_alerts_silenced', 0)} open alerts silenced)")
    return 0


def _expire(args: argparse.Namespace, client: Client) -> int:
    for silence_id in args.silence_ids:
        silence = client.call("POST", f"/v1/silences/{quote(silence_id, safe='')}/expire", body={"by": client.by})
        print(f"{silence['silence_id']}: expired")
    return 0


def add(commands: Any, run: Any, shared: argparse.ArgumentParser) -> None:
    silences = commands.add_parser("silences", help="list, add and expire silences (notify's API)")
    actions = silences.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[shared], help="every silence (--active: those muting now)")
    listing.add_argument("--active", action="store_true")
    listing.set_defaults(func=run(_list))
    adding = actions.add_parser("add", parents=[shared], help="mute alerts matching NAME=VALUE ... for --duration")
    adding.add_argument("matchers", nargs="+", help=f"NAME=VALUE, NAME one of {', '.join(MATCHERS)}")
    adding.add_argument("--duration", default="2h", help="how long: 90m, 2h, 3d (default 2h)")
    adding.add_argument("--comment", required=True, help="why (kept with the silence)")
    adding.set_defaults(func=run(_add))
    expire = actions.add_parser("expire", parents=[shared], help="end silences now")
    expire.add_argument("silence_ids", nargs="+")
    expire.set_defaults(func=run(_expire))
