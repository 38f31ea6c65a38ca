"""One notify instance at a time does the work that must not be done twice (publishing the change
log to the `alerts` exchange, writing change-log entries a stopped instance left unwritten).

A lease in MongoDB (collection `leases`): the holder renews it; when it stops renewing, another
instance takes over once the lease has run out.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid

from services.common.mongo import Database
from services.common.timeutil import utcnow

LEASE_SECONDS = 10.0


class Lease:
    def __init__(self, db: Database, name: str, seconds: float = LEASE_SECONDS):
        self._leases = db["leases"]
        self._name = name
        self._seconds = seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renewed_at: float | None = None  # monotonic time of the last successful renewal

    async def ensure(self) -> None:
        # created before anyone claims it (an upserting claim could race into a duplicate key)
        await self._leases.update_one({"_id": self._name}, {"$setOnInsert": {"holder": None, "until": utcnow()}}, upsert=True)

    async def hold(self) -> bool:
        """Take or renew the lease; True while this instance holds it. Renewed a third of the
        way through, not on every call (a write each time would be most of an idle notify's load)."""
        if self._renewed_at is not None and time.monotonic() - self._renewed_at < self._seconds / 3:
            return True
        now = utcnow()
        result = await self._leases.update_one(
            {"_id": self._name, "$or": [{"holder": self.holder}, {"until": {"$lte": now}}]},
            {"$set": {"holder": self.holder, "until": now + dt.timedelta(seconds=self._seconds)}},
        )
        held: bool = result.matched_count == 1
        self._renewed_at = time.monotonic() if held else None
        return held

    async def release(self) -> None:
        self._renewed_at = None
        await self._leases.update_one({"_id": self._name, "holder": self.holder}, {"$set": {"until": utcnow()}})
