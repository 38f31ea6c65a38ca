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
are held. After a start it stays where it was saved until the events that waited in the queue
have been read, so a restart never judges a dealer before its queued events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from faststream.rabbit import RabbitMessage
from pydantic import ValidationError

from services.common.alerts import AlertSignal
from services.common.batching import flush_forever
from services.common.broker import PublishTimeout, connect_with_retry, make_broker, publish_each
from services.common.consuming import ack_batch, reconnect_when_stalled, reject, retry_or_reject, subscribe
from services.common.deadletter import dead_letter_body
from services.common.events import parse_event
from services.common.health import Health
from services.common.settings import Settings
from services.common.topology import Topology, alert_routing_key, declare, evaluation_routing_key

from .core import RulesCore, TooLate
from .judge import Judge, Refused, SetAside
from .policy import Policy
from .signals import Output, coalesce
from .store import StateStore, encode

log = logging.getLogger("dealerwatch.rules")

FLUSH_SECONDS = 0.02
QUIET_SECONDS = 1.0  # after a start: no event for this long and an empty queue = caught up
TICKS_PER_ROUND = 500  # judgements per clock round before the event loop gets a turn (~0.1 s)


class RulesService:
    def __init__(self, settings: Settings, policy: Policy):
        self.settings = settings
        self.topology = Topology(settings.namespace)
        self.core = RulesCore(policy, forget_ids_when_judging=False)
        self.judge = Judge(self.core, grace=settings.clock_grace_seconds, hold_seconds=settings.clock_hold_seconds)
        self.store = StateStore(settings)
        self.broker = make_broker(settings)
        self.health = Health()
        self.policy_file_errors: list[str] = []  # the file is invalid: the policy running is the last good one
        self.ready = False
        self._outputs: list[Output] = []
        self._unacked: list[tuple[RabbitMessage, str]] = []  # (message, its dealer)
        self._publish_failures: dict[str, int] = {}  # output message id -> failed flushes
        self._flush_wanted = asyncio.Event()
        self._clock_wakeup = asyncio.Event()
        self._clock_wake_at = float("inf")  # wall time the clock loop next wakes at
        self._saved_clock: float | None = None  # where the clock stood when last saved
        self._catching_up = True  # after a start, until the queue's waiting events are read
        self._last_arrival = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._flush_messages = max(1, settings.prefetch // 2)
        subscribe(self.broker, self.topology.rules_queue, self.on_message, prefetch=settings.prefetch, title="rules: events")

    async def start(self) -> None:
        self.core.states.update(await self.store.load_all())
        saved = await self.store.load_clock() or {}
        self._saved_clock = saved.get("at")
        self.judge.history.update(dict(saved.get("history", [])))
        # holds run from their dealers' last event: events that waited while we were away count too
        self.judge.extend_holds(time.time() + self.settings.clock_hold_seconds)
        for dealer_id in self.core.states:
            self.judge.schedule(dealer_id)
        log.info("loaded %d dealer states; policy %s", len(self.core.states), self.core.policy.version)
        if not self.policy_file_errors:
            await self.store.save_policy(self.core.policy.text, self.core.policy.version)
        await connect_with_retry(self.broker, start=False)
        await self.broker.start()  # first: the consumer declares its queue on its own channel
        await declare(self.broker, self.topology)
        stalls = reconnect_when_stalled(
            self.broker, self.topology, [self.topology.rules_queue], holding=lambda: bool(self._unacked)
        )
        self._tasks = [
            self.health.watch("flush", asyncio.create_task(self._flush_loop())),
            self.health.watch("clock", asyncio.create_task(self._clock_loop())),
            self.health.watch("consumer watch", asyncio.create_task(stalls)),
        ]
        self.ready = True

    def consumer_state(self) -> str:
        """For the task dump (kill -USR1): each subscriber, its channel and consumer."""
        lines = []
        for subscriber in self.broker.subscribers:
            queue = getattr(subscriber, "_queue_obj", None)
            channel = getattr(queue, "channel", None)
            underlay = getattr(channel, "_channel", None)
            raw = getattr(underlay, "channel", None)
            lines.append(
                f"subscriber running={subscriber.running} tag={getattr(subscriber, '_consumer_tag', None)} "
                f"queue={getattr(queue, 'name', None)} channel={channel!r} closed={getattr(channel, 'is_closed', None)} "
                f"raw={raw!r} consumers={list(getattr(raw, 'consumers', {}) or {})} unacked={len(self._unacked)}"
            )
        return "\n".join(lines) + "\n"

    async def stop(self) -> None:
        self.ready = False
        for subscriber in self.broker.subscribers:
            await subscriber.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._flush()
        except Exception as exc:  # noqa: BLE001 - unacked messages are redelivered
            log.warning("final flush failed (%s); unacked events will be redelivered", exc)
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
        self.judge.retry_set_aside()
        for dealer_id in self.core.states:
            self.judge.schedule(dealer_id)
        self._clock_wakeup.set()
        self._flush_wanted.set()

    async def _save_policy(self, policy: Policy) -> None:
        try:
            await self.store.save_policy(policy.text, policy.version)
        except Exception as exc:  # noqa: BLE001 - only the fallback for a later start is missed
            log.warning("could not store policy %s as the last good one: %s", policy.version, exc)

    # --- consuming ---

    async def on_message(self, body: bytes) -> None:
        message: RabbitMessage = self.broker.context.get_local("message")
        self._last_arrival = arrived = time.time()
        try:
            event = parse_event(body)
        except ValidationError as exc:
            reason = "invalid event: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
            )
            await self._dead_letter(message, reason)
            return
        at = event.occurred_at.timestamp()
        while True:  # the dealer's own deadlines first, a turn for the event loop in between
            caught_up, finished = self.judge.catch_up(event.dealer_id, at, limit=TICKS_PER_ROUND)
            self._outputs += caught_up
            if finished:
                break
            await asyncio.sleep(0)
        try:
            outputs, _ = self.judge.handle(event, arrived=arrived)
        except Refused as refused:
            self._outputs += refused.outputs  # the dealer's deadlines judged before it stand
            if isinstance(refused.cause, TooLate):
                again = " (delivered again: it may have been counted before its first delivery was cut short)"
                await self._dead_letter(message, f"too late: {refused.cause}{again if message.raw_message.redelivered else ''}")
            else:  # the dealer is as before the event: try again, then dead-letter with the reason
                await retry_or_reject(
                    self.broker, self.topology, message, refused.cause, max_attempts=self.settings.max_attempts, stage="rules"
                )
            self._flush_wanted.set()
            return
        self._outputs += outputs
        if self.judge.histories_moved or self._next_wake() < self._clock_wake_at:
            self._clock_wakeup.set()
        self._unacked.append((message, event.dealer_id))
        self._flush_wanted.set()

    async def _dead_letter(self, message: RabbitMessage, reason: str) -> None:
        await reject(self.broker, self.topology, message, reason, stage="rules")

    # --- the clock ---

    def clock_now(self) -> float:
        """The time up to which dealers not held are judged."""
        if self._catching_up and self._saved_clock is not None:
            return self._saved_clock
        return time.time() - self.settings.clock_grace_seconds

    async def _caught_up(self) -> bool:
        if time.time() - self._last_arrival < QUIET_SECONDS:
            return False
        queue = await self.broker.declare_queue(self.topology.rules_queue)
        result = await queue.declare()  # a fresh count of the messages waiting
        return result.message_count == 0

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
        """Judge what is due; returns how long to sleep."""
        if self._catching_up:
            try:
                self._catching_up = not await self._caught_up()
            except Exception as exc:  # noqa: BLE001 - broker away: stay where we are
                log.warning("cannot count the waiting events yet (%s)", exc)
            if not self._catching_up:
                log.info("caught up with the events that waited; the clock follows wall time")
        wall = time.time()
        self.judge.release_holds(wall)
        now = self.clock_now()
        outputs = self.judge.advance(now, limit=TICKS_PER_ROUND) + self.judge.follow_histories(limit=TICKS_PER_ROUND)
        if outputs or self.core.dirty:
            self._outputs += outputs
            self._flush_wanted.set()
        if self.judge.histories_moved or ((next_time := self.judge.clock.next_time()) is not None and next_time <= now):
            return 0.0  # more is due: the next round after the event loop had a turn
        timeout = QUIET_SECONDS if self._catching_up else max_sleep
        timeout = min(max(self._next_wake() - wall, 0.05), timeout)
        self._clock_wake_at = wall + timeout
        return timeout

    def _next_wake(self) -> float:
        """Wall time of the next thing the clock has to do: a deadline (reached by the clock
        `grace` after it passes in wall time) or the end of a hold."""
        deadline, hold_end = self.judge.clock.next_time(), self.judge.next_hold_end()
        candidates = [float("inf")]
        if deadline is not None:
            candidates.append(deadline + self.settings.clock_grace_seconds)
        if hold_end is not None:
            candidates.append(hold_end)
        return min(candidates)

    def clock_view(self) -> dict[str, Any]:
        return {
            "judged_until": self.clock_now(),
            "catching_up": self._catching_up,
            "grace_seconds": self.settings.clock_grace_seconds,
            "hold_seconds": self.settings.clock_hold_seconds,
            "dealers": len(self.core.states),
            "dealers_held": self.judge.held(),
            "next_hold_end": self.judge.next_hold_end(),
            "history": dict(self.judge.history),
            "dealers_set_aside": len(self.judge.set_aside),
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
        # Snapshot synchronously: everything below covers exactly these messages and states.
        outputs, self._outputs = self._outputs, []
        unacked, self._unacked = self._unacked, []
        dirty, self.core.dirty = self.core.dirty, set()
        docs, unstorable = [], {}
        for dealer_id in dirty:
            if dealer_id in self.core.states:
                self.core.forget_ids(dealer_id)
                try:
                    docs.append(encode(self.core.states[dealer_id]))
                except ValueError as exc:
                    unstorable[dealer_id] = str(exc)
        clock = self.clock_now()
        try:
            # outputs judged from a state that cannot be kept are not published
            await self._publish(coalesce([o for o in outputs if o.dealer_id not in unstorable]))
            refused = await self.store.save(
                docs,
                {
                    "at": clock,
                    "lateness": self.core.policy.lateness,
                    "history": list(self.judge.history.items()),
                },
            )
        except Exception:
            # put everything back in front, to be retried (re-publishing is idempotent)
            self._outputs[:0] = outputs
            self._unacked[:0] = unacked
            self.core.dirty |= dirty
            raise
        self._saved_clock = clock
        unstorable.update(refused)
        for dealer_id, reason in unstorable.items():
            await self._set_aside(dealer_id, reason)
        keep = []
        for message, dealer_id in unacked:
            if dealer_id in unstorable:
                await self._dead_letter(message, f"dealer {dealer_id} is set aside: {unstorable[dealer_id]}")
            else:
                keep.append(message)
        await ack_batch(keep)

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
        if any(self._publish_failures[m[3]] < self.settings.max_attempts for m, _ in failed):
            raise failed[0][1]
        for (_, key, body, message_id), error in failed:
            log.error("dead-lettering output %s: %s", message_id, error)
            reason = f"not published after {self.settings.max_attempts} tries: {error}"
            await dead_letter_body(self.broker, self.topology, body, key, message_id, reason, stage="rules.output")
            del self._publish_failures[message_id]

    async def _set_aside(self, dealer_id: str, reason: str) -> None:
        """A dealer whose state cannot be stored: back to its last stored state, off the clock.
        Events of it judged since the snapshot go the same way as those of the batch."""
        log.error("dealer %s is set aside: %s", dealer_id, reason)
        stored = await self.store.load(dealer_id)
        if stored is None:
            self.core.states.pop(dealer_id, None)
        else:
            self.core.states[dealer_id] = stored
        self.core.dirty.discard(dealer_id)
        self.judge.set_aside[dealer_id] = SetAside(dealer_id, (stored.latest if stored else None) or 0.0, reason)
        self.judge.clock.schedule(dealer_id, None)
        self._outputs = [o for o in self._outputs if o.dealer_id != dealer_id]
        later = [message for message, dealer in self._unacked if dealer == dealer_id]
        self._unacked = [(message, dealer) for message, dealer in self._unacked if dealer != dealer_id]
        for message in later:
            await self._dead_letter(message, f"dealer {dealer_id} is set aside: {reason}")


def _routing_key(output: Output) -> str:
    if isinstance(output, AlertSignal):
        return alert_routing_key(output.severity, output.rule_id, output.dealer_id)
    return evaluation_routing_key(output.dealer_id)


def _message_id(output: Output) -> str:
    if isinstance(output, AlertSignal):
        return f"{output.alert_id}:{output.state}:{output.firing_count}"
    return f"evaluation:{output.dealer_id}:{output.promotion_id}"
