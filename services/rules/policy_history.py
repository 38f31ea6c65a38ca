"""The policy's reload history (accepted and refused, with the errors) and the diff of the last
change on the archive's last 90 days: what the board's policy view shows (#26)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from pymongo import DESCENDING

from services.common import archive
from services.common.mongo import Database

from .policy import Policy
from .toolbox import offline

log = logging.getLogger("dealerwatch.rules.policy_history")

COLLECTION = "rules_policy_reloads"
KEPT = 100  # reloads listed (older ones are deleted)
DIFF_DAYS = 90


class PolicyHistory:
    def __init__(self, db: Database):
        self._db = db
        self._reloads = db[COLLECTION]
        self._tasks: set[asyncio.Task[None]] = set()
        self.loaded_at = dt.datetime.now(dt.UTC)

    async def record(self, outcome: str, reason: str, before: str, after: str | None, errors: list[str]) -> None:
        at = dt.datetime.now(dt.UTC)
        if outcome == "accepted":
            self.loaded_at = at
        entry = {"at": at, "outcome": outcome, "reason": reason, "from": before, "to": after, "errors": errors[:50]}
        try:
            await self._reloads.insert_one(entry)
            old = await self._reloads.find({}, {"_id": 1}).sort("at", DESCENDING).skip(KEPT).to_list(None)
            if old:
                await self._reloads.delete_many({"_id": {"$in": [d["_id"] for d in old]}})
        except Exception as exc:  # noqa: BLE001 - the history is for people; the reload stands
            log.warning("could not record the policy reload: %s", exc)

    def record_soon(self, outcome: str, reason: str, before: Policy, after: Policy | None, errors: list[str]) -> None:
        """From the reloader (synchronous): recorded, and an accepted change's diff worked out, in the background."""
        task = asyncio.get_running_loop().create_task(self._record_and_diff(outcome, reason, before, after, errors))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_and_diff(self, outcome: str, reason: str, before: Policy, after: Policy | None, errors: list[str]) -> None:
        await self.record(outcome, reason, before.version, after.version if after else None, errors)
        if outcome == "accepted" and after is not None:
            try:
                found = await self.diff(before.text, after.text)
                await self._db["rules_policy"].replace_one(
                    {"_id": "last-diff"}, {"_id": "last-diff", "at": dt.datetime.now(dt.UTC), "diff": found}, upsert=True
                )
            except Exception as exc:  # noqa: BLE001
                log.warning("the diff of the policy change %s -> %s failed: %s", before.version, after.version, exc)

    async def diff(self, old_text: str, new_text: str, days: int = DIFF_DAYS) -> dict[str, Any]:
        """Both texts judged on the archive's last `days` days, in a process of its own."""
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        events = [e async for e in archive.read(self._db, since)]
        found: dict[str, Any] = await offline.in_process(offline.diff_texts, old_text, new_text, events, None)
        found["archive"] = {"since": since.isoformat(), "days": days}
        return found

    async def view(self, limit: int = 20) -> dict[str, Any]:
        reloads = await self._reloads.find({}, {"_id": 0}).sort("at", DESCENDING).limit(limit).to_list(None)
        last = await self._db["rules_policy"].find_one({"_id": "last-diff"}, {"_id": 0})
        for entry in reloads:
            entry["at"] = entry["at"].isoformat()
        if last is not None:
            last["at"] = last["at"].isoformat()
        return {"loaded_at": self.loaded_at.isoformat(), "reloads": reloads, "last_diff": last}

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
