"""Which partitions this rules worker owns, and how it takes and gives them up.

Ownership is an exclusive consumer on the partition's queue (docs/scaling.md): the broker lets
one connection consume it at a time and frees it the moment that connection dies (SIGKILL) or
misses its heartbeats (a frozen worker). Workers find each other through MongoDB
(`rules_workers`, a heartbeat every HEARTBEAT_SECONDS) only to know their even share: each
takes free partitions up to ceil(partitions / live workers) and gives up one above it per round.

A partition is given up by closing its channel after its handled messages are flushed: the
broker delivers what was prefetched but not handled again, in order, to the next owner
(cancelling the consumer instead would let newer messages overtake them). Taking one bumps its
epoch in `rules_partitions`; state written with an older epoch is refused (the fence against a
worker that was frozen while its partitions moved on).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from yarl import URL

from services.common.partitions import partition_of
from services.common.topology import Topology

from .judge import Judge

log = logging.getLogger("dealerwatch.rules.partitions")

HEARTBEAT_SECONDS = 1.0  # a worker's line in rules_workers, and the rebalance round
ROUND_LIMIT_SECONDS = 60.0  # a rebalance round (flushes included) that takes longer is stuck
CLOSE_SECONDS = 5.0
AMQP_HEARTBEAT_SECONDS = 3  # the broker frees a frozen worker's partitions after ~2 missed beats
ORPHAN_AFTER_RELEASE = 10.0  # a partition this worker gave up is left to the others this long


@dataclass
class Partition:
    """One owned partition: its queue's channel, its dealers' clock, what waits to be acked."""

    number: int
    epoch: int
    judge: Judge
    channel: AbstractChannel
    queue: str
    taken_at: float
    dealers: set[str] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # loaded: its messages may be judged
    releasing: bool = False  # handled messages are flushed, nothing more is judged
    saved_clock: float | None = None  # where its clock stood when the previous owner stopped
    catching_up: bool = True  # until the events waiting in its queue were read
    last_arrival: float = 0.0
    clock_saved_at: float = 0.0  # wall time its clock was last written

    def clock_now(self, wall_clock: float) -> float:
        if self.catching_up and self.saved_clock is not None:
            return self.saved_clock
        return wall_clock


class Delivery:
    """An aio-pika delivery with the face of FastStream's RabbitMessage that the consumer helpers
    use (services.common.consuming, deadletter)."""

    def __init__(self, raw: AbstractIncomingMessage, partition: int):
        self.raw_message = raw
        self.partition = partition

    @property
    def body(self) -> bytes:
        return self.raw_message.body

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.raw_message.headers or {})

    @property
    def message_id(self) -> str:
        return self.raw_message.message_id or ""

    async def ack(self, multiple: bool = False) -> None:
        await self.raw_message.ack(multiple=multiple)

    async def nack(self, multiple: bool = False, requeue: bool = True) -> None:
        await self.raw_message.nack(multiple=multiple, requeue=requeue)


class Ownership:
    """The rebalance loop: keep this worker's share of the partitions, no more, no less."""

    def __init__(
        self,
        urls: list[str],
        topology: Topology,
        *,
        prefetch: int,
        owned: Callable[[], list[int]],
        take: Callable[[int, AbstractChannel], Callable[[AbstractIncomingMessage], Awaitable[None]]],
        activate: Callable[[int], Awaitable[None]],
        release: Callable[[int], Awaitable[None]],
        lose_all: Callable[[str], None],
        fence: Callable[[], Awaitable[None]],
        live_workers: Callable[[], Awaitable[int]],
        first_choice: int = 0,
    ):
        self.urls = urls
        self.topology = topology
        self.prefetch = prefetch
        self._owned, self._take, self._activate, self._release, self._lose_all = owned, take, activate, release, lose_all
        self._live_workers = live_workers
        self._fence = fence
        self._first = first_choice % topology.partitions
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self._url_index = 0
        self.live = 1
        self.target = topology.partitions
        self._seen_free: set[int] = set()  # free in the previous round
        self._released: dict[int, float] = {}  # partition -> when this worker gave it up (monotonic)
        self._stuck = False  # a round timed out: the connection is replaced

    async def connect(self) -> None:
        """A plain (not self-restoring) connection: its consumers are this worker's ownership,
        which must end with it, never come back on their own after the broker has handed them on."""
        while True:
            url = self.urls[self._url_index % len(self.urls)]
            self._url_index += 1
            try:
                self.connection = await aio_pika.connect(URL(url).update_query(heartbeat=AMQP_HEARTBEAT_SECONDS), timeout=5)
                break
            except Exception as exc:  # noqa: BLE001 - try the next node, then again
                log.warning("partition connection to %s failed (%s); trying again", URL(url).host, type(exc).__name__)
                await asyncio.sleep(0.5 if len(self.urls) > 1 else 1.0)
        self.connection.close_callbacks.add(self._closed)
        log.info("partition connection open to %s", URL(url).with_password(None).with_user(None))

    def _closed(self, _: Any, exc: BaseException | None = None) -> None:
        self._lose_all(f"the partition connection closed ({exc or 'by this worker'})")

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close_callbacks.discard(self._closed)
            await self.connection.close()
            self.connection = None

    async def run(self) -> None:
        """Forever: reconnect when needed, then one rebalance round every HEARTBEAT_SECONDS."""
        while True:
            try:
                if self._broken():
                    # the broker dropped the connection (a node went away, or this worker was frozen
                    # past its heartbeats): what it owned is gone; connect again and take a share
                    await self._reset()
                    await self.connect()
                async with asyncio.timeout(ROUND_LIMIT_SECONDS):
                    await self.rebalance()
            except TimeoutError:
                # a call on a connection that died under it can wait forever (seen with a worker
                # starved of CPU past its heartbeats): start again on a new connection
                log.error("a rebalance round took over %.0fs; reconnecting", ROUND_LIMIT_SECONDS)
                self._stuck = True
            except Exception:
                log.exception("rebalancing failed")
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def _broken(self) -> bool:
        connection = self.connection
        if connection is None or connection.is_closed or self._stuck:
            return True
        transport = connection.transport
        return transport is None or transport.connection.is_closed

    async def _reset(self) -> None:
        self._lose_all("the partition connection is gone")
        broken, self.connection, self._stuck = self.connection, None, False
        if broken is not None:
            broken.close_callbacks.discard(self._closed)
            try:
                await asyncio.wait_for(broken.close(), CLOSE_SECONDS)
            except (Exception, TimeoutError):  # noqa: BLE001 - already gone, or its reader dead
                pass

    async def rebalance(self) -> None:
        self.live = max(1, await self._live_workers())
        self.target = math.ceil(self.topology.partitions / self.live)
        owned = self._owned()
        if len(owned) > self.target:  # the excess, highest first: the others take them in their next round
            for number in sorted(owned)[self.target :]:
                self._released[number] = time.monotonic()
                await self._release(number)
            return
        await self._fence()  # a partition another worker took meanwhile is dropped, even while idle
        owned = self._owned()
        free = await self._free(set(owned))
        # A partition free in two rounds running is an orphan (its worker died and is still
        # counted until its heartbeat times out): taken even above the share, the broker's
        # consumer count being the truth about who is alive. Not one this worker gave up lately.
        orphans = [
            n for n in free if n in self._seen_free and time.monotonic() - self._released.get(n, -math.inf) > ORPHAN_AFTER_RELEASE
        ]
        self._seen_free = set(free)
        wanted = free[: max(0, self.target - len(owned))]
        for number in [*wanted, *(n for n in orphans if n not in wanted)]:
            await self._try_take(number, self.topology.rules_queue(number).name)

    async def _free(self, owned: set[int]) -> list[int]:
        """Partitions nobody consumes, this worker's first choice first."""
        assert self.connection is not None
        count = self.topology.partitions
        probe = await self.connection.channel()
        free = []
        try:
            for offset in range(count):
                number = (self._first + offset) % count
                if number in owned:
                    continue
                declared = await probe.declare_queue(self.topology.rules_queue(number).name, passive=True)
                if not declared.declaration_result.consumer_count:
                    free.append(number)
        finally:
            if not probe.is_closed:
                await probe.close()
        return free

    async def _try_take(self, number: int, name: str) -> bool:
        assert self.connection is not None
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await channel.declare_queue(name, passive=True)
        handler = self._take(number, channel)  # its messages wait until it is activated
        try:
            await queue.consume(handler)
        except aiormq.exceptions.ChannelClosed as exc:
            log.info("could not consume partition %d (%s)", number, exc)
            await self._release(number)
            return False
        try:
            await self._activate(number)  # the epoch first: from now on older owners are fenced off
        except Exception:
            await self._release(number)
            raise
        log.info("took partition %d", number)
        return True


def first_choice(worker_id: str, partitions: int) -> int:
    """Where a worker starts looking for free partitions: spread, so that workers starting
    together try different ones first."""
    return partition_of(worker_id, partitions)
