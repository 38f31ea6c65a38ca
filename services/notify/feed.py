"""One reader of the change log per notify process, shared by every live client: an open
dashboard costs no database query while it waits, however many are open. A client that resumes
from further back than the feed remembers reads the log itself until it has caught up.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from typing import Any

from .changes import ChangeLog

log = logging.getLogger("dealerwatch.notify.feed")

POLL_SECONDS = 0.3
REMEMBERED = 2000


class ChangeFeed:
    def __init__(self, changes: ChangeLog):
        self._changes = changes
        self._recent: list[dict[str, Any]] = []  # the newest changes, in order
        self._ids: list[int] = []
        self.position: int | None = None  # the newest change read
        self._arrived = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                if self.position is None:
                    self.position = await self._changes.last()
                batch = await self._changes.after(self.position)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                log.warning("cannot read the change log: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if not batch:
                await asyncio.sleep(POLL_SECONDS)
                continue
            self._recent += batch
            self._ids += [doc["_id"] for doc in batch]
            if len(self._recent) > 2 * REMEMBERED:
                self._recent, self._ids = self._recent[-REMEMBERED:], self._ids[-REMEMBERED:]
            self.position = batch[-1]["_id"]
            self._arrived.set()
            self._arrived = asyncio.Event()

    async def start_position(self) -> int:
        return self.position if self.position is not None else await self._changes.last()

    def arrival(self) -> asyncio.Event:
        """Set when the next changes arrive; take it before `after` so that none is missed."""
        return self._arrived

    async def after(self, seq: int) -> list[dict[str, Any]]:
        """Changes numbered above `seq`, in order: from memory when it reaches back that far."""
        if self._ids and self._ids[0] <= seq + 1:
            return self._recent[bisect.bisect_right(self._ids, seq) :]
        if self.position is not None and seq >= self.position:
            return []
        return await self._changes.after(seq)
