"""`dealerwatch alerts list|show|ack|resolve|assign`: notify's alerts API from a terminal or a script."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from .client import Client
from .output import emit

COLUMNS = (
    ("id", "alert_id"),
    ("severity", "severity"),
    ("status", "status"),
    ("rule", "rule_id"),
    ("dealer", "dealer_id"),
    ("subject", "subject"),
    ("assignee", "assignee"),
    ("first seen", "first_seen_at"),
    ("summary", "summary"),
)


def _list(args: argparse.Namespace, client: Client) -> int:
    params = {
        "dealer_id": args.dealer,
        "rule_id": args.rule,
        "severity": args.severity,
        "region": args.region,
        "status": args.status,
        "since": args.since,
        "assignee": args.assignee,
        "limit": min(args.limit, 500),
    }
    items: list[dict[str, Any]] = []
    cursor = None
    while len(items) < args.limit:  # pages of at most 500, up to --limit
        page = client.call("GET", "/v1/alerts", params={**params, "cursor": cursor})
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    emit(items[: args.limit], COLUMNS, args.output)
    return 0


def _path(alert_id: str, action: str = "") -> str:
    return f"/v1/alerts/{quote(alert_id, safe='')}{action}"


def _show(args: argparse.Namespace, client: Client) -> int:
    alert = client.call("GET", _path(args.alert_id))
    if args.output == "json":
        json.dump(alert, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    for field in ("alert_id", "rule_id", "dealer_id", "dealer_name", "subject", "severity", "status", "owner", "assignee"):
        print(f"{field:<14} {alert.get(field) if alert.get(field) is not None else '-'}")
    print(f"{'labels':<14} {', '.join(f'{k}={v}' for k, v in alert.get('labels', {}).items())}")
    print(f"{'first seen':<14} {alert.get('first_seen_at')}   last seen {alert.get('last_seen_at')}")
    print(f"\n{alert.get('summary')}\n")
    for entry in alert.get("history", []):
        note = f": {entry['note']}" if entry.get("note") else ""
        print(f"  {entry.get('at')}  {entry.get('action'):<13} {entry.get('by') or ''}{note}")
    return 0


def _act(action: str, body_of: Any) -> Any:
    def run(args: argparse.Namespace, client: Client) -> int:
        alert = client.call("POST", _path(args.alert_id, f"/{action}"), body=body_of(args, client))
        print(f"{alert['alert_id']}: {alert['status']}" + (f", assignee {alert.get('assignee')}" if action == "assign" else ""))
        return 0

    return run


def add(commands: Any, run: Any, shared: argparse.ArgumentParser) -> None:
    alerts = commands.add_parser("alerts", help="list, show and act on alerts (notify's API)")
    actions = alerts.add_subparsers(dest="action", required=True)

    listing = actions.add_parser("list", parents=[shared], help="alerts matching the filters, newest first")
    listing.add_argument("--dealer")
    listing.add_argument("--rule")
    listing.add_argument("--severity", choices=["info", "warning", "critical"])
    listing.add_argument("--region")
    listing.add_argument("--status", help="open, acknowledged, resolved; several comma-separated")
    listing.add_argument("--since", help="first seen at or after (RFC 3339)")
    listing.add_argument("--assignee", help="who investigates; `none`: nobody")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=run(_list))

    show = actions.add_parser("show", parents=[shared], help="one alert whole, with its history")
    show.add_argument("alert_id")
    show.set_defaults(func=run(_show))

    ack = actions.add_parser("ack", parents=[shared], help="acknowledge: someone is on it")
    ack.add_argument("alert_id")
    ack.add_argument("--note")
    ack.set_defaults(func=run(_act("ack", lambda a, c: {"by": c.by, "note": a.note})))

    resolve = actions.add_parser("resolve", parents=[shared], help="resolve with its cause (GET /v1/causes lists them)")
    resolve.add_argument("alert_id")
    resolve.add_argument("--cause", required=True)
    resolve.add_argument("--note")
    resolve.set_defaults(func=run(_act("resolve", lambda a, c: {"by": c.by, "cause": a.cause, "note": a.note})))

    assign = actions.add_parser("assign", parents=[shared], help="give it to someone (--to NAME) or to nobody (--unassign)")
    assign.add_argument("alert_id")
    to = assign.add_mutually_exclusive_group(required=True)
    to.add_argument("--to")
    to.add_argument("--unassign", action="store_true")
    assign.add_argument("--note")
    assign.set_defaults(func=run(_act("assign", lambda a, c: {"by": c.by, "to": None if a.unassign else a.to, "note": a.note})))
