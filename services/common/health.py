"""What a service's loops report about themselves, so that `/readyz` can say why it is not ready.

A loop that keeps failing (a flush the database refuses, a consumer that cannot store) or that
stopped (its task ended, or it has not come round for far longer than it should) makes the
service not ready, with the reason. A single failure that the next try mends does not.
"""

from __future__ import annotations

import asyncio
import time

from starlette.responses import JSONResponse

STUCK_SECONDS = 10.0  # failing this long without a success: stuck


class Health:
    def __init__(self) -> None:
        self._failing: dict[str, tuple[float, str]] = {}  # loop -> (first failure, latest error)
        self._beats: dict[str, tuple[float, float]] = {}  # loop -> (last round, longest expected gap)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def failed(self, loop: str, error: BaseException | str) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        since = self._failing.get(loop, (time.monotonic(), ""))[0]
        self._failing[loop] = (since, text[:500])

    def ok(self, loop: str) -> None:
        self._failing.pop(loop, None)

    def beat(self, loop: str, next_within: float) -> None:
        """The loop came round, and will again within `next_within` seconds."""
        self._beats[loop] = (time.monotonic(), next_within)

    def watch(self, loop: str, task: asyncio.Task[None]) -> asyncio.Task[None]:
        self._tasks[loop] = task
        return task

    def problems(self) -> list[str]:
        now = time.monotonic()
        found = [
            f"{loop} failing for {now - since:.0f}s: {error}"
            for loop, (since, error) in self._failing.items()
            if now - since >= STUCK_SECONDS
        ]
        found += [
            f"{loop} has not come round for {now - at:.0f}s"
            for loop, (at, within) in self._beats.items()
            if now - at > within + STUCK_SECONDS
        ]
        for loop, task in self._tasks.items():
            if task.done() and task.cancelled():
                found.append(f"{loop} stopped: cancelled")
            elif task.done() and (error := task.exception()) is not None:
                found.append(f"{loop} stopped: {type(error).__name__}: {error}")
        return found


def readiness(ready: bool, details: dict[str, object], shown: bool) -> JSONResponse:
    """`/readyz`: 200 or 503 for anyone (orchestrators ask without a key); what is wrong, and
    where (host names, errors, the policy's problems), only for a caller with a reading key."""
    body = {"ready": ready, **details} if shown else {"ready": ready}
    return JSONResponse(body, status_code=200 if ready else 503)
