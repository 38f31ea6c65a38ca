"""`dealerwatch policy diff OLD NEW [EVENTS | --archive --since 90d]` and the rules service's
`POST /admin/reload?dry_run=true`: both policies judged on the same history (as `backtest`
judges it); the alerts only one raises, and those both raise at other times, grouped by rule and
dealer, each with the measures that made it and the other policy's condition on them."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Sequence
from typing import Any

from .. import expressions as ex
from ..backtest import distances
from ..policy import Policy
from .replay import Episode, replay

EXAMPLES = 5  # explained entries per rule and dealer (the counts cover all)

Key = tuple[str, str, str | None]


def compare(
    events: Sequence[Any], old: Policy, new: Policy, now: dt.datetime | None = None, examples: int = EXAMPLES
) -> dict[str, Any]:
    """The diff as data (what --format json prints). `events`: parsed events, in the order judged;
    `examples`: the entries listed for each rule and dealer (counted all the same)."""
    until = now or max((e.occurred_at for e in events), default=dt.datetime.now(dt.UTC))
    before, _ = replay(events, old, until, as_backtest=True)
    after, _ = replay(events, new, until, as_backtest=True)
    old_by, new_by = _by_key(before), _by_key(after)
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = collections.defaultdict(
        lambda: {"only_old": [], "only_new": [], "moved": []}
    )
    same = 0
    for key in sorted(old_by.keys() | new_by.keys(), key=lambda k: (k[0], k[1], k[2] or "")):
        olds, news = old_by.get(key, []), new_by.get(key, [])
        shared = {(e.opened_at, e.resolved_at) for e in olds} & {(e.opened_at, e.resolved_at) for e in news}
        same += len(shared)
        olds = [e for e in olds if (e.opened_at, e.resolved_at) not in shared]
        news = [e for e in news if (e.opened_at, e.resolved_at) not in shared]
        group = groups[key[:2]]
        for a, b in zip(olds, news, strict=False):  # the same alert, opened or resolved at other times
            group["moved"].append({"subject": key[2], "old": _entry(a, new, "old"), "new": _entry(b, old, "new")})
        group["only_old"] += [{"subject": key[2], **_entry(e, new, "old")} for e in olds[len(news) :]]
        group["only_new"] += [{"subject": key[2], **_entry(e, old, "new")} for e in news[len(olds) :]]
    rules: dict[str, dict[str, Any]] = {}
    for (rule_id, dealer_id), group in sorted(groups.items()):
        if not any(group.values()):
            continue
        rule = rules.setdefault(rule_id, {"rule_id": rule_id, "only_old": 0, "only_new": 0, "moved": 0, "dealers": []})
        for kind in ("only_old", "only_new", "moved"):
            rule[kind] += len(group[kind])
        rule["dealers"].append({"dealer_id": dealer_id, **{k: v[:examples] for k, v in group.items()}, "counts": _counts(group)})
    totals = {kind: sum(r[kind] for r in rules.values()) for kind in ("only_old", "only_new", "moved")}
    return {
        "old": {"source": old.source, "version": old.version},
        "new": {"source": new.source, "version": new.version},
        "events": len(events),
        "dealers": len({e.dealer_id for e in events}),
        "until": until.isoformat(),
        "alerts": {"old": len(before), "new": len(after), "same": same, **totals},
        "rules": list(rules.values()),
    }


def _by_key(episodes: list[Episode]) -> dict[Key, list[Episode]]:
    found: dict[Key, list[Episode]] = collections.defaultdict(list)
    for episode in episodes:
        found[episode.key].append(episode)
    return found


def _counts(group: dict[str, list[Any]]) -> dict[str, int]:
    return {kind: len(items) for kind, items in group.items()}


def _entry(episode: Episode, other: Policy, side: str) -> dict[str, Any]:
    """When it opened and resolved, its measures then, and how the other policy's rule reads them."""
    measures = episode.details.get("measures", {})
    entry: dict[str, Any] = {
        "opened_at": episode.opened_at.isoformat(),
        "resolved_at": episode.resolved_at.isoformat() if episode.resolved_at else None,
        "condition": episode.details.get("condition"),
        "measures": measures,
    }
    rule = next((r for r in other.rules if r.id == episode.rule_id), None)
    known = {name: value for name, value in measures.items() if value is not None}
    entry["other"] = {
        "policy": "new" if side == "old" else "old",
        "condition": None if rule is None else " ".join(rule.spec.when.split()),
        "holds": None if rule is None else ex.holds(rule.condition, known),
        "comparisons": [] if rule is None else distances(rule.condition, known),
    }
    return entry


def markdown(found: dict[str, Any]) -> str:
    old, new, alerts = found["old"], found["new"], found["alerts"]
    lines = [
        f"# Policy diff: {old['source']} ({old['version']}) → {new['source']} ({new['version']})",
        "",
        f"{found['events']:,} events of {found['dealers']:,} dealers, judged up to {found['until']}: "
        f"{alerts['old']:,} alerts before, {alerts['new']:,} after, {alerts['same']:,} the same; "
        f"{alerts['only_old']:,} only before, {alerts['only_new']:,} only after, {alerts['moved']:,} at other times.",
    ]
    if not found["rules"]:
        return "\n".join([*lines, "", "No alert differs.", ""])
    lines += ["", "| rule | only before | only after | at other times |", "|---|---:|---:|---:|"]
    lines += [f"| {r['rule_id']} | {r['only_old']} | {r['only_new']} | {r['moved']} |" for r in found["rules"]]
    for rule in found["rules"]:
        lines += ["", f"## {rule['rule_id']}"]
        for dealer in rule["dealers"]:
            counts = dealer["counts"]
            lines += [
                "",
                f"### dealer {dealer['dealer_id']} ({counts['only_old']} only before, "
                f"{counts['only_new']} only after, {counts['moved']} at other times)",
            ]
            for kind, title in (("only_old", "only before"), ("only_new", "only after")):
                for entry in dealer[kind]:
                    lines += _entry_lines(title, entry)
            for pair in dealer["moved"]:
                lines += _entry_lines("before", {"subject": pair["subject"], **pair["old"]})
                lines += _entry_lines("after", {"subject": pair["subject"], **pair["new"]})
            shown = sum(len(dealer[k]) for k in ("only_old", "only_new", "moved"))
            if shown < sum(counts.values()):
                lines.append(f"- … and {sum(counts.values()) - shown} more")
    return "\n".join(lines) + "\n"


def _entry_lines(title: str, entry: dict[str, Any]) -> list[str]:
    subject = f" {entry['subject']}" if entry.get("subject") else ""
    resolved = f", resolved {entry['resolved_at']}" if entry["resolved_at"] else ", still open"
    measures = ", ".join(f"{k}={v:,.2f}" for k, v in sorted(entry["measures"].items()) if v is not None)
    other = entry["other"]
    lines = [f"- {title}{subject}: opened {entry['opened_at']}{resolved}; {measures}"]
    if other["condition"] is None:
        lines.append(f"  - the {other['policy']} policy has no such rule")
    else:
        verdict = "holds" if other["holds"] else "does not hold"
        lines.append(f"  - {other['policy']}: `{other['condition']}` {verdict} on these values:")
        lines += [f"    - {line}" for line in other["comparisons"]]
    return lines
