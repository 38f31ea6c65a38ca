"""The batch loop shared by the consumers that write in batches (rules' flush, the dealer file):
messages gather for a moment (or until a batch is full), one write covers them, one ack frame
settles them (idle, a single message is written at once: the latency of one event matters
then). A write that fails is retried with a growing pause, and the loop's health says so."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .broker import cancelled_by_the_client
from .health import Health

BUSY_SECONDS = 0.1  # a flush this recent means messages are streaming in: gather a batch
LONGEST_GATHER_SECONDS = 1.0


async def flush_forever(
    wanted: asyncio.Event,
    flush: Callable[[], Awaitable[None]],
    *,
    name: str,
    health: Health,
    log: logging.Logger,
    gather_seconds: float,
    full: Callable[[], bool] = lambda: False,
) -> None:
    """Run `flush` whenever `wanted` is set; `flush` raises when nothing could be settled (it
    puts its batch back first), and is then retried after 0.5, 1, 2 ... 10 seconds."""
    delay = 0.5
    loop = asyncio.get_running_loop()
    flushed_at, took = float("-inf"), 0.0
    while True:
        await wanted.wait()
        if not full() and loop.time() - flushed_at < BUSY_SECONDS:
            # busy: let a batch gather (idle: one message goes at once), for twice as long as the
            # last write took: heavy writes (a dealer of 20,000 plans is 3 MB) come less often,
            # and writing takes at most about a third of the time
            await asyncio.sleep(min(max(gather_seconds, 2 * took), LONGEST_GATHER_SECONDS))
        wanted.clear()
        try:
            started = loop.time()
            await flush()
            flushed_at = loop.time()
            took = flushed_at - started
        except (Exception, asyncio.CancelledError) as exc:
            if not isinstance(exc, Exception) and not cancelled_by_the_client(exc):
                raise
            health.failed(name, exc)
            log.error("%s failed (%s: %s); retrying in %.1fs", name, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            wanted.set()
            continue
        health.ok(name)
        delay = 0.5


async def wait_at_most(event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` have passed, whichever comes first."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
