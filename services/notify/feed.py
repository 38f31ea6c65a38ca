"""One reader of the change log per notify process, shared by every live client: an open
dashboard costs no database query while it waits, however many are open. A client that resumes
from further back than the feed remembers reads the log itself until it has caught up.

While changes come, the reader polls the log; once it is quiet, it waits on a change stream
where the server has them (a replica set, the MongoDB-compatible test server), so an idle notify
reads the log about once a minute (#14: an idle notify costs ≤ 1 database operation a second).
On a standalone server it keeps polling.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from typing import Any

from pymongo.errors import OperationFailure

from services.common.batching import wait_at_most

from .changes import ChangeLog

log = logging.getLogger("dealerwatch.notify.feed")

POLL_SECONDS = 0.3  # without change streams
GAP_RETRY_SECONDS = 0.5  # a younger number was seen than could be read: an older one is being written
QUIET_SECONDS = 5.0  # no change for this long: wait on a change stream instead of polling
IDLE_READ_SECONDS = 60.0  # with change streams: a read now and then all the same (a stream that lost an event)
REMEMBERED = 2000
NO_CHANGE_STREAMS = (40573, 40324, 136)  # not a replica set / unknown stage / change streams disabled


class ChangeFeed:
    def __init__(self, changes: ChangeLog):
        self._changes = changes
        self._recent: list[dict[str, Any]] = []  # the newest changes, in order
        self._ids: list[int] = []
        self.position: int | None = None  # the newest change read
        self._arrived = asyncio.Event()
        self._written = asyncio.Event()  # the change stream saw a new entry
        self._newest_written = 0
        self.watching = False  # a change stream is open: no polling
        self._streams = True  # False once the server said it has no change streams

    async def run(self) -> None:
        """Poll while changes come (a change stream costs the local test server more than a
        read every POLL_SECONDS under load); once the log has been quiet for QUIET_SECONDS,
        wait on a change stream instead, until the next change."""
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        watcher: asyncio.Task[None] | None = None
        try:
            while True:
                self._written.clear()  # before the read: an entry written after it sets it again
                try:
                    if self.position is None:
                        self.position = await self._changes.last()
                    batch = await self._changes.after(self.position)
                except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                    log.warning("cannot read the change log: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                if batch:
                    self._keep(batch)
                    quiet_since = loop.time()
                    await _stopped(watcher)
                    watcher = None
                    continue
                if watcher is None and self._streams and loop.time() - quiet_since >= QUIET_SECONDS:
                    watcher = asyncio.create_task(self._watch())
                if not self.watching:
                    wait = POLL_SECONDS
                elif self._newest_written > self.position:
                    wait = GAP_RETRY_SECONDS
                else:
                    wait = IDLE_READ_SECONDS
                await wait_at_most(self._written, wait)
        finally:
            await _stopped(watcher)

    def _keep(self, batch: list[dict[str, Any]]) -> None:
        self._recent += batch
        self._ids += [doc["_id"] for doc in batch]
        if len(self._recent) > 2 * REMEMBERED:
            self._recent, self._ids = self._recent[-REMEMBERED:], self._ids[-REMEMBERED:]
        self.position = batch[-1]["_id"]
        self._arrived.set()
        self._arrived = asyncio.Event()

    async def _watch(self) -> None:
        """Wake the reader on every new log entry, until cancelled; on a server without change
        streams, stop (the reader polls)."""
        try:
            while True:
                try:
                    async with self._changes.watch_inserts() as stream:
                        self.watching = True
                        self._written.set()  # entries written before the stream opened
                        async for change in stream:
                            self._newest_written = max(self._newest_written, change["documentKey"]["_id"])
                            self._written.set()
                except OperationFailure as exc:
                    self.watching = False
                    if exc.code in NO_CHANGE_STREAMS:
                        self._streams = False
                        log.info("no change streams on this server (%s): polling the change log every %.1fs", exc, POLL_SECONDS)
                        return
                    log.warning("change stream failed (%s); polling until it is open again", exc)
                except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                    self.watching = False
                    log.warning("change stream failed (%s); polling until it is open again", exc)
                await asyncio.sleep(1.0)
        finally:
            self.watching = False

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


async def _stopped(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
