"""The live rules service: consume events -> Judge (core + clock) -> publish outputs.

Durability, in this order, for a batch of handled messages:
  1. alert signals and promotion evaluations are published and confirmed,
  2. the states of the dealers they touched (and the clock) are written to MongoDB,
  3. only then are the messages acked.
A crash anywhere before 3 redelivers the messages onto the last written state,
which reproduces the same outputs (notify treats them idempotently). Batching
(a flush every `FLUSH_SECONDS` or half a prefetch window) is where the speed
comes from: one bulk write and one ack frame per batch.

Nothing blocks the others: a message that cannot be judged is retried a few times, then
dead-lettered with the reason (the dealer left as before it); a dealer whose state cannot be
stored is set aside and its messages dead-lettered; an output the broker keeps refusing is
dead-lettered after `max_attempts` flushes. Only an outage (broker or database unreachable)
stops the flush, and `/readyz` then says so.

The clock (see judge.py): wall time minus `clock_grace_seconds`; dealers receiving history
are held. A partition just taken (a start, or a takeover) stays where its clock was saved until
the events that waited in its queue have been read, so a dealer is never judged before its
queued events.

Several workers share the dealers by partition (partitions.py): this worker judges, stores and
acks only the partitions it owns, and every write carries the partition's epoch (a worker whose
partition moved on while it was frozen is refused, and checks before it publishes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import ValidationError

from services.common.alerts import AlertSignal, DealerStanding, SupportEvaluation
from services.common.batching import flush_forever
from services.common.broker import PublishTimeout, connect_with_retry, follow_nodes, make_broker, publish_each
from services.common.consuming import ack_batch, reject, retry_or_reject
from services.common.deadletter import dead_letter_body
from services.common.events import parse_event
from services.common.health import Health
from services.common.limits import LimitReached
from services.common.partitions import partition_of
from services.common.settings import Settings
from services.common.topology import Topology, alert_routing_key, declare, evaluation_routing_key

from . import metrics
from .core import RulesCore, TooLate
from .judge import Judge, Refused, SetAside
from .partitions import Delivery, Ownership, Partition, first_choice
from .policy import Policy
from .signals import Output, coalesce
from .store import StateStore, encode

log = logging.getLogger("dealerwatch.rules")

FLUSH_SECONDS = 0.02
QUIET_SECONDS = 1.0  # after a start: no event for this long and an empty queue = caught up
CLOCK_SAVE_SECONDS = 1.0
MAX_PUBLISH_FAILURES = 10_000  # outputs whose failed flushes are counted (the oldest forgotten)
CLOCK_VIEW_HISTORIES = 100  # the histories GET /clock shows: those that reached furthest
TICKS_PER_ROUND = 500  # judgements per clock round before the event loop gets a turn (~0.1 s)


class RulesService:
    def __init__(self, settings: Settings, policy: Policy, worker_id: str | None = None):
        self.settings = settings
        self.topology = Topology(settings.namespace, settings.partitions)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{settings.rules_port}"
        self.core = RulesCore(policy, forget_ids_when_judging=False)
        self.store = StateStore(settings)
        self.broker = make_broker(settings)
        self.health = Health()
        self.policy_file_errors: list[str] = []  # the file is invalid: the policy running is the last good one
        self.ready = False
        self.partitions: dict[int, Partition] = {}  # the partitions this worker owns now
        self.ownership = Ownership(
            settings.amqp_urls(),
            self.topology,
            prefetch=settings.prefetch,
            owned=lambda: sorted(self.partitions),
            take=self._take,
            activate=self._activate,
            release=self._release,
            lose_all=self._lose_all,
            fence=self._check_epochs,
            live_workers=self._heartbeat,
            first_choice=first_choice(self.worker_id, settings.partitions),
        )
        self._outputs: list[Output] = []
        self._unacked: list[tuple[Delivery, str]] = []  # (message, its dealer)
        self._publish_failures: dict[str, int] = {}  # output message id -> failed flushes
        self._flush_wanted = asyncio.Event()
        self._flushing = asyncio.Lock()  # the flush loop, a partition given up and the stop flush in turn
        self._clock_wakeup = asyncio.Event()
        self._clock_wake_at = float("inf")  # wall time the clock loop next wakes at
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._flush_messages = max(1, settings.prefetch // 2)

    async def start(self) -> None:
        moved = await self.store.assign_partitions()
        if moved:
            log.info("gave %d stored dealers their partition (of %d)", moved, self.settings.partitions)
        if not self.policy_file_errors:
            await self.store.save_policy(self.core.policy.text, self.core.policy.version)
        await connect_with_retry(self.broker, start=True)
        await declare(self.broker, self.topology)
        await self.ownership.connect()
        await self.ownership.rebalance()  # the first share now: a start takes its partitions at once
        self._tasks = [
            self.health.watch("flush", asyncio.create_task(self._flush_loop())),
            self.health.watch("clock", asyncio.create_task(self._clock_loop())),
            self.health.watch("partitions", asyncio.create_task(self.ownership.run())),
            self.health.watch(
                "broker nodes",
                asyncio.create_task(
                    follow_nodes(self.broker, start=True, reconnected=lambda: declare(self.broker, self.topology))
                ),
            ),
        ]
        log.info("worker %s started; policy %s", self.worker_id, self.core.policy.version)
        self.ready = True

    def consumer_state(self) -> str:
        """For the task dump (kill -USR1): each owned partition, its channel and what waits."""
        lines = [
            f"partition {p.number} epoch={p.epoch} ready={p.ready.is_set()} releasing={p.releasing} "
            f"catching_up={p.catching_up} dealers={len(p.dealers)} channel_closed={p.channel.is_closed}"
            for p in self.partitions.values()
        ]
        return "\n".join([*lines, f"unacked={len(self._unacked)} outputs={len(self._outputs)}"]) + "\n"

    async def stop(self) -> None:
        self.ready = False
        # the loops are stopped between two flushes: a flush cut short would leave its messages
        # to be acked by the next one (a `multiple` ack) without their states stored
        async with self._flushing:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for number in list(self.partitions):  # flushed and closed one by one: the others take them in order
            await self._release(number)
        try:
            await self.store.leave(self.worker_id)
        except Exception as exc:  # noqa: BLE001 - the others count this worker out after its timeout
            log.warning("could not sign off (%s)", exc)
        await self.ownership.close()
        await self.broker.stop()
        self.store.close()

    def use_policy(self, policy: Policy) -> None:
        """Hot reload: new rules from the next judgement on; dealer state is kept. Dealers set
        aside are tried again (the new policy may judge them). Raises, changing nothing, if the
        engine refuses the policy."""
        self._outputs += self.core.use(policy)
        self.policy_file_errors = []
        saving = asyncio.create_task(self._save_policy(policy))
        self._background.add(saving)
        saving.add_done_callback(self._background.discard)
        for partition in self.partitions.values():
            partition.judge.retry_set_aside()
            for dealer_id in partition.dealers:
                partition.judge.schedule(dealer_id)
        self._clock_wakeup.set()
        self._flush_wanted.set()

    async def _save_policy(self, policy: Policy) -> None:
        try:
            await self.store.save_policy(policy.text, policy.version)
        except Exception as exc:  # noqa: BLE001 - only the fallback for a later start is missed
            log.warning("could not store policy %s as the last good one: %s", policy.version, exc)

    # --- partitions ---

    def partition_of(self, dealer_id: str) -> int:
        return partition_of(dealer_id, self.settings.partitions)

    def _new_judge(self, dealers: Iterable[str] = ()) -> Judge:
        return Judge(
            self.core,
            grace=self.settings.clock_grace_seconds,
            hold_seconds=self.settings.clock_hold_seconds,
            dealers=dealers,
        )

    def _take(self, number: int, channel: AbstractChannel) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        """A partition whose queue this worker is about to consume: its messages wait for
        `_activate` (its epoch and its dealers' states), then are judged one at a time, in order."""
        partition = Partition(number, 0, self._new_judge(), channel, self.topology.rules_queue(number).name, time.time())
        partition.last_arrival = partition.taken_at
        self.partitions[number] = partition
        turn = asyncio.Lock()  # FIFO: aio-pika hands each delivery to its own task

        async def handle(raw: AbstractIncomingMessage) -> None:
            async with turn:
                await partition.ready.wait()
                if partition.releasing or self.partitions.get(number) is not partition:
                    return  # not acked: delivered again, in order, to the next owner
                await self.on_message(partition, Delivery(raw, number))

        return handle

    async def _activate(self, number: int) -> None:
        partition = self.partitions[number]
        partition.epoch = await self.store.take_partition(number, self.worker_id)
        states = await self.store.load_partition(number)
        saved = await self.store.load_clock(number) or {}
        if self.partitions.get(number) is not partition:
            return  # lost while loading
        self.core.states.update(states)
        partition.dealers = set(states)
        partition.judge = self._new_judge(partition.dealers)
        partition.judge.restore_history(saved.get("history", []))
        partition.saved_clock = saved.get("at")
        # holds run from their dealers' last event: events that waited meanwhile count too
        partition.judge.extend_holds(time.time() + self.settings.clock_hold_seconds, partition.dealers)
        partition.ready.set()
        self._clock_wakeup.set()
        log.info("partition %d, epoch %d: %d dealers loaded", number, partition.epoch, len(states))

    async def _release(self, number: int) -> None:
        """Give a partition up: what was handled is flushed (published, stored, acked), then its
        channel is closed, so that the broker delivers what was not handled again, in order."""
        partition = self.partitions.get(number)
        if partition is None:
            return
        partition.releasing = True
        if partition.ready.is_set():
            try:
                await self._flush()
            except Exception as exc:  # noqa: BLE001 - not acked: the next owner judges it again
                log.warning("flush before giving up partition %d failed (%s)", number, exc)
        self._drop(number, "given up")
        await _close_quietly(partition.channel)

    def _drop(self, number: int, reason: str) -> None:
        """Forget a partition (given up, fenced off, or its connection lost): its dealers'
        states, judgements not yet published and messages not yet acked go with it; its next
        owner starts from what was stored and is delivered the rest again."""
        partition = self.partitions.pop(number, None)
        if partition is None:
            return
        partition.releasing = True
        for dealer_id in partition.dealers:
            self.core.states.pop(dealer_id, None)
            self.core.dirty.discard(dealer_id)
        self._outputs = [o for o in self._outputs if self.partition_of(o.dealer_id) != number]
        self._unacked = [(m, d) for m, d in self._unacked if m.partition != number]
        if not partition.channel.is_closed:  # what it holds goes back, in order, to the owner
            closing = asyncio.create_task(_close_quietly(partition.channel))
            self._background.add(closing)
            closing.add_done_callback(self._background.discard)
        log.info("partition %d dropped: %s", number, reason)

    async def _check_epochs(self) -> None:
        owned = {n: p for n, p in self.partitions.items() if p.ready.is_set()}
        stored = await self.store.epochs(list(owned)) if owned else {}
        for number, partition in owned.items():
            if stored.get(number, partition.epoch) != partition.epoch and self.partitions.get(number) is partition:
                self._drop(number, f"taken over by another worker (epoch {stored[number]} > {partition.epoch})")

    def _lose_all(self, reason: str) -> None:
        for number in list(self.partitions):
            self._drop(number, reason)

    async def _heartbeat(self) -> int:
        return await self.store.heartbeat(
            self.worker_id, {"port": self.settings.rules_port, "partitions": sorted(self.partitions)}
        )

    async def partitions_view(self) -> list[dict[str, Any]]:
        """Each owned partition: epoch, lag (messages waiting in its queue), dealers."""
        items = []
        for partition in list(self.partitions.values()):
            lag = None
            try:
                declared = await partition.channel.declare_queue(partition.queue, passive=True)
                lag = declared.declaration_result.message_count
            except Exception:  # noqa: BLE001 - the channel is going away
                pass
            items.append(
                {
                    "partition": partition.number,
                    "epoch": partition.epoch,
                    "lag": lag,
                    "dealers": len(partition.dealers),
                    "catching_up": partition.catching_up,
                    "taken_at": partition.taken_at,
                }
            )
        return sorted(items, key=lambda item: item["partition"])

    # --- consuming ---

    async def on_message(self, partition: Partition, message: Delivery) -> None:
        body = message.body
        partition.last_arrival = arrived = time.time()
        try:
            event = parse_event(body)
        except ValidationError as exc:
            reason = "invalid event: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
            )
            await self._dead_letter(message, reason)
            return
        if (home := self.partition_of(event.dealer_id)) != partition.number:
            reason = (
                f"dealer {event.dealer_id} belongs to partition {home}, not {partition.number}: "
                "its publisher routes by another hash or partition count"
            )
            await self._dead_letter(message, reason)
            return
        judge = partition.judge
        at = event.occurred_at.timestamp()
        while True:  # the dealer's own deadlines first, a turn for the event loop in between
            caught_up, finished = judge.catch_up(event.dealer_id, at, limit=TICKS_PER_ROUND)
            self._outputs += caught_up
            if finished:
                break
            await asyncio.sleep(0)
            if self.partitions.get(partition.number) is not partition:
                return  # lost meanwhile: delivered again to the next owner
        try:
            outputs, counted = judge.handle(event, arrived=arrived)
        except Refused as refused:
            self._outputs += refused.outputs  # the dealer's deadlines judged before it stand
            if isinstance(refused.cause, TooLate):
                again = " (delivered again: it may have been counted before its first delivery was cut short)"
                await self._dead_letter(message, f"too late: {refused.cause}{again if message.raw_message.redelivered else ''}")
            elif isinstance(refused.cause, LimitReached):  # past the door (two requests at once): never counted
                await self._dead_letter(message, f"over a limit: {refused.cause}")
            else:  # the dealer is as before the event: try again, then dead-letter with the reason
                await retry_or_reject(
                    self.broker, self.topology, message, refused.cause, max_attempts=self.settings.max_attempts, stage="rules"
                )
            self._flush_wanted.set()
            return
        partition.dealers.add(event.dealer_id)
        if counted:
            metrics.EVENTS_CONSUMED.inc()
        self._outputs += outputs
        # only this partition's deadlines moved (the others' were in the last wake-up time already)
        if judge.histories_moved or self._wake_of(partition) < self._clock_wake_at:
            self._clock_wakeup.set()
        self._unacked.append((message, event.dealer_id))
        self._flush_wanted.set()

    async def _dead_letter(self, message: Delivery, reason: str) -> None:
        await reject(self.broker, self.topology, message, reason, stage="rules")

    # --- the clock ---

    def live_clock(self) -> float:
        """The time up to which dealers not held are judged (a partition still reading the
        events that waited for it stays where its last owner saved its clock)."""
        return time.time() - self.settings.clock_grace_seconds

    async def _caught_up(self, partition: Partition) -> bool:
        if time.time() - partition.last_arrival < QUIET_SECONDS:
            return False
        declared = await partition.channel.declare_queue(partition.queue, passive=True)  # a fresh count
        return declared.declaration_result.message_count == 0

    async def _clock_loop(self) -> None:
        max_sleep = self.settings.clock_max_sleep_seconds
        while True:
            self.health.beat("clock", max_sleep)
            self._clock_wakeup.clear()  # a wake-up during the round below is kept
            try:
                timeout = await self._clock_round(max_sleep)
                self.health.ok("clock")
            except Exception as exc:
                self.health.failed("clock", exc)
                log.exception("the clock failed; trying again")
                timeout = 1.0
            if timeout <= 0:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._clock_wakeup.wait(), timeout)
            except TimeoutError:
                pass

    async def _clock_round(self, max_sleep: float) -> float:
        """Judge what is due in every partition; returns how long to sleep."""
        more, catching_up = False, False
        # judgements this round, all partitions together (~0.1 s before the event loop gets a turn)
        share = max(TICKS_PER_ROUND // max(1, len(self.partitions)), 20)
        for partition in list(self.partitions.values()):
            if not partition.ready.is_set() or partition.releasing:
                continue
            if partition.catching_up:
                try:
                    done = await self._caught_up(partition)
                except Exception as exc:  # noqa: BLE001 - broker away: stay where we are
                    log.warning("cannot count partition %d's waiting events yet (%s)", partition.number, exc)
                    done = False
                if self.partitions.get(partition.number) is not partition:
                    continue
                partition.catching_up = not done
                if done:
                    log.info("partition %d caught up with the events that waited; its clock follows wall time", partition.number)
            catching_up |= partition.catching_up
            judge = partition.judge
            judge.release_holds(time.time())
            now = partition.clock_now(self.live_clock())
            outputs = judge.advance(now, limit=share) + judge.follow_histories(limit=share)
            self._outputs += outputs
            if judge.histories_moved or ((next_time := judge.clock.next_time()) is not None and next_time <= now):
                more = True
        if self._outputs or self.core.dirty:
            self._flush_wanted.set()
        if more:
            return 0.0  # more is due: the next round after the event loop had a turn
        wall = time.time()
        timeout = QUIET_SECONDS if catching_up or any(not p.ready.is_set() for p in self.partitions.values()) else max_sleep
        timeout = min(max(self._next_wake() - wall, 0.05), timeout)
        self._clock_wake_at = wall + timeout
        return timeout

    def _next_wake(self) -> float:
        """Wall time of the next thing the clock has to do: a deadline (reached by the clock
        `grace` after it passes in wall time) or the end of a hold."""
        return min([self._wake_of(partition) for partition in self.partitions.values()], default=float("inf"))

    def _wake_of(self, partition: Partition) -> float:
        deadline, hold_end = partition.judge.clock.next_time(), partition.judge.next_hold_end()
        candidates = [float("inf")]
        if deadline is not None:
            candidates.append(deadline + self.settings.clock_grace_seconds)
        if hold_end is not None:
            candidates.append(hold_end)
        return min(candidates)

    def set_aside(self) -> list[SetAside]:
        return [item for p in self.partitions.values() for item in p.judge.set_aside.values()]

    def clock_view(self) -> dict[str, Any]:
        ready = [p for p in self.partitions.values() if p.ready.is_set()]
        history: dict[str, float] = {}
        for partition in ready:
            for source, newest in partition.judge.history.items():
                history[source] = max(newest, history.get(source, newest))
        return {
            "judged_until": min([p.clock_now(self.live_clock()) for p in ready], default=self.live_clock()),
            "catching_up": any(p.catching_up for p in self.partitions.values()),
            "grace_seconds": self.settings.clock_grace_seconds,
            "hold_seconds": self.settings.clock_hold_seconds,
            "dealers": len(self.core.states),
            "dealers_held": sum(p.judge.held() for p in ready),
            "next_hold_end": min([e for p in ready if (e := p.judge.next_hold_end()) is not None], default=None),
            "histories": len(history),  # sources of history followed (at most MAX_HISTORIES a partition)
            "history": dict(sorted(history.items(), key=lambda item: -item[1])[:CLOCK_VIEW_HISTORIES]),
            "dealers_set_aside": len(self.set_aside()),
        }

    # --- durability ---

    async def _flush_loop(self) -> None:
        await flush_forever(
            self._flush_wanted,
            self._flush,
            name="flush",
            health=self.health,
            log=log,
            gather_seconds=FLUSH_SECONDS,
            full=lambda: len(self._unacked) >= self._flush_messages,
        )

    async def _flush(self) -> None:
        async with self._flushing:
            with metrics.FLUSH_SECONDS.time():
                await self._flush_once()

    async def _flush_once(self) -> None:
        # Snapshot synchronously: everything below covers exactly these messages and states.
        owned = {n: p for n, p in self.partitions.items() if p.ready.is_set()}
        outputs, self._outputs = self._outputs, []
        unacked, self._unacked = self._unacked, []
        dirty, self.core.dirty = self.core.dirty, set()
        try:
            # fenced: a partition another worker took since (this one was frozen): nothing of it counts
            stored_epochs = await self.store.epochs(list(owned)) if owned else {}
        except BaseException:  # cancelled too (a stop): the next flush covers them, or nothing is acked
            self._put_back(outputs, unacked, dirty)
            raise
        for number, partition in list(owned.items()):
            if stored_epochs.get(number, partition.epoch) != partition.epoch:
                self._drop(number, f"taken over by another worker (epoch {stored_epochs[number]} > {partition.epoch})")
                del owned[number]
        mine = {d for d in dirty if d in self.core.states and self.partition_of(d) in owned}
        docs, unstorable = [], {}
        for dealer_id in mine:
            self.core.forget_ids(dealer_id)
            number = self.partition_of(dealer_id)
            try:
                docs.append(encode(self.core.states[dealer_id], number, owned[number].epoch))
            except ValueError as exc:
                unstorable[dealer_id] = str(exc)
        metrics.FLUSH_DEALERS.observe(len(docs))
        touched = {self.partition_of(d) for d in mine} | {m.partition for m, _ in unacked if m.partition in owned}
        # a partition's clock at most every CLOCK_SAVE_SECONDS (and when it is given up): a next
        # owner starting from a clock a second old only waits for its queue a little longer
        wall = time.time()
        touched = {n for n in touched if owned[n].releasing or wall - owned[n].clock_saved_at >= CLOCK_SAVE_SECONDS}
        for n in touched:
            owned[n].clock_saved_at = wall
        clocks = {
            n: {
                "epoch": owned[n].epoch,
                "at": owned[n].clock_now(self.live_clock()),
                "history": list(owned[n].judge.history.items()),
            }
            for n in touched
        }
        try:
            # outputs judged from a state that cannot be kept are not published
            await self._publish(
                coalesce([o for o in outputs if o.dealer_id not in unstorable and self.partition_of(o.dealer_id) in owned])
            )
            refused, fenced = await self.store.save(docs, clocks, self.core.policy.lateness)
            # Ack only what the owner of record stored: a worker that took the partition since may
            # have loaded its states before this write, and will be delivered these messages again
            # (it counts them, or recognises them if it loaded after the write).
            holding = sorted({m.partition for m, _ in unacked if m.partition in owned})
            current = await self.store.epochs(holding) if holding else {}
        except BaseException:
            self._put_back(outputs, unacked, mine)
            raise
        fenced |= {n for n in holding if current.get(n, owned[n].epoch) != owned[n].epoch}
        for number in fenced:
            if owned.get(number) is self.partitions.get(number):
                self._drop(number, "its state was fenced off: another worker took it")
            owned.pop(number, None)
        unstorable.update(refused)
        for dealer_id, reason in unstorable.items():
            await self._set_aside(dealer_id, reason)
        keep = []
        for message, dealer_id in unacked:
            if message.partition not in owned:
                continue  # not acked: the partition's next owner is delivered it again
            if dealer_id in unstorable:
                await self._dead_letter(message, f"dealer {dealer_id} is set aside: {unstorable[dealer_id]}")
            else:
                keep.append(message)
        await ack_batch(keep)

    def _put_back(self, outputs: list[Output], unacked: list[tuple[Delivery, str]], dirty: set[str]) -> None:
        """A flush failed: everything of the partitions still owned goes back in front, to be
        retried (publishing again is idempotent)."""
        owned = set(self.partitions)
        self._outputs[:0] = [o for o in outputs if self.partition_of(o.dealer_id) in owned]
        self._unacked[:0] = [(m, d) for m, d in unacked if m.partition in owned]
        self.core.dirty |= {d for d in dirty if d in self.core.states}

    async def _publish(self, outputs: list[Output]) -> None:
        """Publish with pipelined confirms. An outage raises (the flush is retried as a whole);
        an output the broker refuses while it is up is retried with the flush, and dead-lettered
        with the reason once it has failed `max_attempts` times."""
        messages = [(self.topology.alert_signals, _routing_key(o), o.model_dump_json().encode(), _message_id(o)) for o in outputs]
        errors = await publish_each(self.broker, messages, timeout=self.settings.publish_timeout_seconds)
        failed = [(m, e) for m, e in zip(messages, errors, strict=True) if e is not None]
        for message, error in zip(messages, errors, strict=True):
            if error is None:
                self._publish_failures.pop(message[3], None)
        if not failed:
            return
        if any(isinstance(e, PublishTimeout) for _, e in failed) or not await self.broker.ping(timeout=1.0):
            raise failed[0][1]  # the broker is away: an outage, not these messages
        for (_, _, _, message_id), _ in failed:
            self._publish_failures[message_id] = self._publish_failures.get(message_id, 0) + 1
        while len(self._publish_failures) > MAX_PUBLISH_FAILURES:  # of partitions given up meanwhile: forgotten
            del self._publish_failures[next(iter(self._publish_failures))]
        if any(self._publish_failures[m[3]] < self.settings.max_attempts for m, _ in failed):
            raise failed[0][1]
        for (_, key, body, message_id), error in failed:
            log.error("dead-lettering output %s: %s", message_id, error)
            reason = f"not published after {self.settings.max_attempts} tries: {error}"
            headers = {"x-original-exchange": self.topology.alert_signals.name}
            await dead_letter_body(
                self.broker, self.topology, body, key, message_id, reason, stage="rules.output", headers=headers
            )
            del self._publish_failures[message_id]

    async def _set_aside(self, dealer_id: str, reason: str) -> None:
        """A dealer whose state cannot be stored: back to its last stored state, off the clock.
        Events of it judged since the snapshot go the same way as those of the batch."""
        partition = self.partitions.get(self.partition_of(dealer_id))
        if partition is None:
            return
        log.error("dealer %s is set aside: %s", dealer_id, reason)
        stored = await self.store.load(dealer_id)
        if stored is None:
            self.core.states.pop(dealer_id, None)
        else:
            self.core.states[dealer_id] = stored
        self.core.dirty.discard(dealer_id)
        partition.judge.set_aside[dealer_id] = SetAside(dealer_id, (stored.latest if stored else None) or 0.0, reason)
        partition.judge.clock.schedule(dealer_id, None)
        self._outputs = [o for o in self._outputs if o.dealer_id != dealer_id]
        later = [message for message, dealer in self._unacked if dealer == dealer_id]
        self._unacked = [(message, dealer) for message, dealer in self._unacked if dealer != dealer_id]
        for message in later:
            await self._dead_letter(message, f"dealer {dealer_id} is set aside: {reason}")


async def _close_quietly(channel: AbstractChannel) -> None:
    try:
        await channel.close()
    except Exception:  # noqa: BLE001 - closed with its connection already
        pass


def _routing_key(output: Output) -> str:
    if isinstance(output, AlertSignal):
        return alert_routing_key(output.severity, output.rule_id, output.dealer_id)
    if isinstance(output, SupportEvaluation):
        return evaluation_routing_key(output.dealer_id, "support")
    if isinstance(output, DealerStanding):
        return evaluation_routing_key(output.dealer_id, "standing")
    return evaluation_routing_key(output.dealer_id)


def _message_id(output: Output) -> str:
    if isinstance(output, AlertSignal):
        return f"{output.alert_id}:{output.state}:{output.firing_count}"
    if isinstance(output, SupportEvaluation):
        return f"support-evaluation:{output.dealer_id}:{output.support_id}"
    if isinstance(output, DealerStanding):
        return f"standing:{output.dealer_id}:{output.at.isoformat()}"
    return f"evaluation:{output.dealer_id}:{output.promotion_id}"
