"""Dealer feedback, read from the dealer timeline (#23): each item received with its answer, for
the dealer file, and the feedback report by region, channel or topic. (Whether an item waited too
long is the rules' `feedback-unanswered`; this module only shows and counts.)

An item's answer is its earliest `feedback.answered` (it may arrive before the feedback); the
answer time is from receiving to that answer, in days.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Literal

from pymongo import ASCENDING

from services.common.durations import DAY
from services.common.mongo import Collection, find_in
from services.common.percentiles import percentile

RECEIVED, ANSWERED = "feedback.received", "feedback.answered"
GroupBy = Literal["region", "channel", "topic"]
FIELDS = ("received", "answered", "open", "oldest_open_days", "answer_p50_days", "answer_p90_days")
SHOWN = 200  # items in the dealer file: open ones first


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _days(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / DAY, 3)


def items(received: list[dict[str, Any]], answers: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """Each received item with its earliest answer; open ones first (longest waiting first), then
    the answered ones, newest first."""
    first_answer: dict[tuple[str, str], dict[str, Any]] = {}
    for given in sorted(answers, key=lambda a: _utc(a["occurred_at"])):
        first_answer.setdefault((given["dealer_id"], given["feedback_id"]), given)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for item in sorted(received, key=lambda r: _utc(r["occurred_at"])):
        latest.setdefault((item["dealer_id"], item["feedback_id"]), item)  # the first receipt counts
    out = []
    for key, item in latest.items():
        answer = first_answer.get(key)
        at = _utc(item["occurred_at"])
        answered_at = _utc(answer["occurred_at"]) if answer else None
        out.append(
            {
                "dealer_id": item["dealer_id"],
                "feedback_id": item["feedback_id"],
                "channel": item["channel"],
                "topic": item["topic"],
                "text": item["text"],
                "received_by": item.get("received_by"),
                "received_at": at,
                "region": item.get("region"),
                "status": "answered" if answer else "open",
                "answered_at": answered_at,
                "answered_by": answer["by"] if answer else None,
                "answer": answer.get("text") if answer else None,
                "answer_days": max(0.0, _days(answered_at - at)) if answered_at else None,
                "waiting_days": None if answer else _days(now - at),
            }
        )
    out.sort(key=lambda i: (i["status"] != "open", (1 if i["status"] == "open" else -1) * i["received_at"].timestamp()))
    return out


class FeedbackRecords:
    def __init__(self, timeline: Collection):
        self._timeline = timeline

    async def ensure_indexes(self) -> None:
        await self._timeline.create_index(
            [("type", ASCENDING), ("occurred_at", ASCENDING)], name="feedback_by_time", partialFilterExpression={"type": RECEIVED}
        )

    async def of_dealer(self, dealer_id: str, now: dt.datetime) -> list[dict[str, Any]]:
        base = {"dealer_id": dealer_id}
        received = await self._timeline.find({**base, "type": RECEIVED}, {"_id": 0}).to_list(None)
        answers = await self._timeline.find({**base, "type": ANSWERED}, {"_id": 0}).to_list(None)
        return items(received, answers, now)[:SHOWN]

    async def received_between(self, since: dt.datetime, until: dt.datetime, now: dt.datetime) -> list[dict[str, Any]]:
        """Every item received in [since, until), with its answer."""
        received = await self._timeline.find(
            {"type": RECEIVED, "occurred_at": {"$gte": since, "$lt": until}}, {"_id": 0}
        ).to_list(None)
        dealers = sorted({r["dealer_id"] for r in received})
        answers = [a async for a in find_in(self._timeline, "dealer_id", dealers, {"type": ANSWERED}, {"_id": 0})]
        return items(received, answers, now)


def report(found: list[dict[str, Any]], group_by: GroupBy, regions: dict[str, str]) -> list[dict[str, Any]]:
    """One row per group: received, answered, open (and the longest wait), answer times."""
    groups: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for item in found:
        key = (regions.get(item["dealer_id"]) or item.get("region")) if group_by == "region" else item[group_by]
        groups[key].append(item)
    rows: list[dict[str, Any]] = []
    for name, members in groups.items():
        answer_days = [i["answer_days"] for i in members if i["answer_days"] is not None]
        waiting = [i["waiting_days"] for i in members if i["waiting_days"] is not None]
        rows.append(
            {
                "group": name,
                "received": len(members),
                "answered": len(answer_days),
                "open": len(waiting),
                "oldest_open_days": max(waiting, default=None),
                "answer_p50_days": percentile(answer_days, 0.5),
                "answer_p90_days": percentile(answer_days, 0.9),
            }
        )
    rows.sort(key=lambda r: (-int(r["received"]), r["group"] is None, r["group"] or ""))
    return rows
