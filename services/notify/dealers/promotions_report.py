"""Promotion owners held to account (#23): the promotions that ended in a period, by owner or by
the dealer's region, read from the evaluations rules sends for every ended promotion (the same
ones the dealer file shows: one definition). Per group: how many ended, budget and spend, the net
effect Σ (P − S), the ratio Σ (P − S) ÷ Σ X, and how many were ineffective ((P − S) ÷ X < 1),
below expectation (P < E), over budget (X > budget) or had spend without an approval."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

GroupBy = Literal["owner", "region"]
FIELDS = (
    "ended",
    "budget",
    "spend",
    "net_effect",
    "ratio",
    "ineffective",
    "below_expectation",
    "over_budget",
    "unapproved_spend",
)
SHOWN = (
    "dealer_id",
    "promotion_id",
    "owner",
    "starts_on",
    "ends_on",
    "sales_during",
    "sales_before",
    "spend",
    "budget",
    "ratio",
    "verdict",
)


def _effect(evaluation: dict[str, Any]) -> float | None:
    during, before = evaluation.get("sales_during"), evaluation.get("sales_before")
    return None if during is None or before is None else during - before


def report(evaluations: list[dict[str, Any]], group_by: GroupBy, regions: dict[str, str]) -> list[dict[str, Any]]:
    groups: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for evaluation in evaluations:
        key = regions.get(evaluation["dealer_id"]) if group_by == "region" else evaluation.get("owner")
        groups[key].append(evaluation)
    rows: list[dict[str, Any]] = []
    for name, members in groups.items():
        effects = [e for e in map(_effect, members) if e is not None]
        spend = sum(m["spend"] for m in members)
        net = round(sum(effects), 2)
        rows.append(
            {
                "group": name,
                "ended": len(members),
                "budget": round(sum(m.get("budget") or 0.0 for m in members), 2),
                "spend": round(spend, 2),
                "net_effect": net,
                "ratio": round(net / spend, 4) if spend else None,
                "ineffective": sum(1 for m in members if m["verdict"] == "ineffective"),
                "below_expectation": sum(1 for m in members if m.get("expected_met") is False),
                "over_budget": sum(1 for m in members if m.get("budget") is not None and m["spend"] > m["budget"]),
                "unapproved_spend": sum(1 for m in members if (m.get("unapproved_spend") or 0) > 0),
                "promotions": [
                    {name: m.get(name) for name in SHOWN}
                    for m in sorted(members, key=lambda m: (m.get("ends_on") or "", m["dealer_id"], m["promotion_id"]))
                ],
            }
        )
    rows.sort(key=lambda r: (-int(r["ended"]), r["group"] is None, r["group"] or ""))
    return rows
