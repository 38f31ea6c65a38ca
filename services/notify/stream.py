"""The live alert stream: Server-Sent Events from the change log, resumable with Last-Event-ID,
and the same changes published to the `alerts` topic exchange for other systems."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from faststream.rabbit import RabbitBroker

from services.common.batching import wait_at_most
from services.common.broker import Outgoing, PublishError, publish_all_confirmed
from services.common.health import Health
from services.common.topology import Topology, alert_routing_key

from .changes import ChangeLog
from .feed import ChangeFeed
from .leader import Lease
from .store import AlertStore

log = logging.getLogger("dealerwatch.notify.stream")

HEARTBEAT_SECONDS = 15.0
RESUME_PAGE = 500  # changes a resuming client is sent; further behind, it is told to list again
SWEEP_SECONDS = 5.0  # how often the lease holder looks for changes a stopped instance left unlogged
STANDBY_SECONDS = 2.0  # an instance without the lease tries to take it this often (it lasts 10 s)
IDLE_SECONDS = 10.0  # with nothing new: the log is read again after this (or when the feed sees more)


def sse(seq: int, change: str, alert: dict[str, Any]) -> str:
    data = json.dumps({"change": change, "alert": alert}, default=str, ensure_ascii=False)
    return f"id: {seq}\nevent: alert\ndata: {data}\n\n"


async def events(
    feed: ChangeFeed, last_id: int | None, matches: Callable[[dict[str, Any]], bool], stop: asyncio.Event
) -> AsyncIterator[str]:
    """SSE text: changes after `last_id` (or from now on), then live ones, with heartbeats. A
    client more than RESUME_PAGE changes behind is not sent them (thirty days of them, for every
    connection of a client that resumes from 0): it gets `reset` with the position to list from,
    and the live changes from there."""
    newest = await feed.start_position()
    seq = last_id if last_id is not None else newest
    yield "retry: 2000\n\n"
    if newest - seq > RESUME_PAGE:
        data = json.dumps({"missed": newest - seq, "stream_position": newest})
        yield f"id: {newest}\nevent: reset\ndata: {data}\n\n"  # read GET /v1/alerts again
        seq = newest
    while not stop.is_set():
        arrived = feed.arrival()
        batch = await feed.after(seq)
        for doc in batch:
            seq = doc["_id"]
            if matches(doc["alert"]):
                yield sse(seq, doc["change"], doc["alert"])
        if batch:
            continue
        waits = [asyncio.ensure_future(arrived.wait()), asyncio.ensure_future(stop.wait())]
        done, pending = await asyncio.wait(waits, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()
        if not done:
            yield ": keep-alive\n\n"


async def publish_changes(
    store: AlertStore,
    feed: ChangeFeed,
    broker: RabbitBroker,
    topology: Topology,
    ready: Callable[[], bool],
    lease: Lease,
    health: Health,
) -> None:
    """Every change to the `alerts` exchange, at least once, in order (a cursor in MongoDB), by
    the one instance holding the lease; that instance also logs changes a stopped one left.
    It reads the log when the feed has seen new changes, or every IDLE_SECONDS (a gap that
    aged, a sweep), not on a short poll: idle, it costs the lease renewal and a read or two per
    ten seconds."""
    changes: ChangeLog = store.changes
    swept_at = 0.0
    cursor: int | None = None  # while holding the lease, this instance is the only one moving it
    while True:
        try:
            if not ready() or not await lease.hold():
                cursor = None
                await asyncio.sleep(STANDBY_SECONDS)
                continue
            if time.monotonic() - swept_at > SWEEP_SECONDS:
                swept_at = time.monotonic()
                if logged := await store.log_unlogged():
                    log.warning("logged %d alert change(s) an instance left unlogged", logged)
            if cursor is None:
                cursor = await changes.cursor("alerts-exchange")
            arrived = feed.arrival()
            batch = await changes.after(cursor)
            # confirms pipelined: one change at a time kept the exchange minutes behind a backfill
            await publish_all_confirmed(broker, map(_outgoing(topology), batch), timeout=10.0, mandatory=False)
            health.ok("alerts exchange")
            if batch:  # one cursor write per batch; a crash before it re-publishes the batch (at least once)
                await changes.advance("alerts-exchange", batch[-1]["_id"])
                cursor = batch[-1]["_id"]
            else:
                await wait_at_most(arrived, IDLE_SECONDS)
        except PublishError as exc:
            cursor = None
            health.failed("alerts exchange", exc)
            log.warning("publishing alert changes failed (%s); retrying", exc)
            await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            cursor = None
            health.failed("alerts exchange", exc)
            log.exception("alert change publisher failed; retrying")
            await asyncio.sleep(1.0)


def _outgoing(topology: Topology) -> Callable[[dict[str, Any]], Outgoing]:
    def message(doc: dict[str, Any]) -> Outgoing:
        alert = doc["alert"]
        body = json.dumps({"seq": doc["_id"], "change": doc["change"], "alert": alert}, default=str).encode()
        key = alert_routing_key(alert["severity"], alert["rule_id"], alert["dealer_id"])
        return topology.alerts, key, body, f"change:{doc['_id']}"

    return message
