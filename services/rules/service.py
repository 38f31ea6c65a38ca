"""The live rules service: consume events -> RulesCore -> publish alert signals.

Durability, in this order, for a batch of handled messages:
  1. alert signals are published and confirmed by the broker,
  2. the states of the dealers they touched are written to MongoDB,
  3. only then are the messages acked.
A crash anywhere before 3 redelivers the messages onto the last written state,
which reproduces the same signals (notify treats them idempotently). Batching
(a flush every `FLUSH_SECONDS` or `FLUSH_MESSAGES`) is where the speed comes from:
one bulk write and one round of acks per batch instead of one write per event.
"""

from __future__ import annotations

import asyncio
import logging
import time

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitMessage
from pydantic import ValidationError

from services.common.alerts import AlertSignal
from services.common.broker import connect_with_retry, make_broker, publish_all_confirmed
from services.common.deadletter import dead_letter
from services.common.events import parse_event
from services.common.settings import Settings
from services.common.topology import Topology, alert_routing_key, declare

from .clock import DeadlineClock
from .core import RulesCore
from .policy import Policy
from .store import StateStore, to_doc

log = logging.getLogger("dealerwatch.rules")

FLUSH_SECONDS = 0.02
CLOCK_BATCH = 500  # dealers judged before yielding to the event loop


async def _raw_body(message: RabbitMessage) -> bytes:
    return message.body


class RulesService:
    def __init__(self, settings: Settings, policy: Policy):
        self.settings = settings
        self.topology = Topology(settings.namespace)
        self.core = RulesCore(policy)
        self.clock = DeadlineClock()
        self.store = StateStore(settings)
        self.broker = make_broker(settings)
        self.ready = False
        self._signals: list[AlertSignal] = []
        self._unacked: list[RabbitMessage] = []
        self._flush_wanted = asyncio.Event()
        self._clock_wakeup = asyncio.Event()
        self._clock_target = float("inf")
        self._tasks: list[asyncio.Task] = []
        self._flush_messages = max(1, settings.prefetch // 2)
        self.broker.subscriber(
            self.topology.rules_queue,
            ack_policy=AckPolicy.MANUAL,
            decoder=_raw_body,
            channel=Channel(prefetch_count=settings.prefetch),
            title="rules: events",
        )(self.on_message)

    async def start(self) -> None:
        self.core.states.update(await self.store.load_all())
        for dealer_id in self.core.states:
            self.clock.schedule(dealer_id, self.core.next_deadline(dealer_id))
        log.info("loaded %d dealer states; policy %s", len(self.core.states), self.core.policy.version)
        await connect_with_retry(self.broker, start=False)
        await declare(self.broker, self.topology)
        await self.broker.start()
        self._tasks = [asyncio.create_task(self._flush_loop()), asyncio.create_task(self._clock_loop())]
        self.ready = True

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

    # --- consuming ---

    async def on_message(self, body: bytes) -> None:
        message: RabbitMessage = self.broker.context.get_local("message")
        try:
            event = parse_event(body)
        except ValidationError as exc:
            reason = "invalid event: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
            )
            await self._dead_letter(message, reason)
            return
        try:
            signals = self.core.handle(event)
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
            await self._retry_or_dead_letter(message, exc)
            return
        if signals:
            self._signals.extend(signals)
        self.clock.schedule(event.dealer_id, self.core.next_deadline(event.dealer_id))
        self._wake_clock_if_earlier(event.dealer_id)
        self._unacked.append(message)
        self._flush_wanted.set()

    async def _dead_letter(self, message: RabbitMessage, reason: str) -> None:
        log.warning("dead-lettering message %s: %s", message.message_id, reason)
        await dead_letter(self.broker, self.topology, message, reason, stage="rules")
        await message.ack()

    async def _retry_or_dead_letter(self, message: RabbitMessage, exc: Exception) -> None:
        attempt = int((message.headers or {}).get("x-delivery-count", 0)) + 1
        if attempt >= self.settings.max_attempts:
            await self._dead_letter(message, f"handler failed {attempt} times: {type(exc).__name__}: {exc}")
            return
        log.exception("handling message %s failed (attempt %d)", message.message_id, attempt)
        await asyncio.sleep(min(0.1 * 2**attempt, 5.0))  # no hot loop
        await message.nack(requeue=True)

    # --- the clock ---

    def _wake_clock_if_earlier(self, dealer_id: str) -> None:
        next_time = self.clock.next_time()
        if next_time is not None and next_time < self._clock_target:
            self._clock_wakeup.set()

    async def _clock_loop(self) -> None:
        while True:
            now = time.time()
            due = self.clock.pop_due(now)
            for index, (dealer_id, deadline) in enumerate(due):
                self._signals.extend(self.core.tick(dealer_id, deadline))
                self.clock.schedule(dealer_id, self.core.next_deadline(dealer_id))
                if index % CLOCK_BATCH == CLOCK_BATCH - 1:
                    await asyncio.sleep(0)
            if due:
                self._flush_wanted.set()
                continue  # judging may have produced deadlines that are already due
            next_time = self.clock.next_time()
            self._clock_target = next_time if next_time is not None else float("inf")
            timeout = self.settings.clock_max_sleep_seconds
            if next_time is not None:
                timeout = min(max(next_time - now, 0.0), timeout)
            self._clock_wakeup.clear()
            try:
                await asyncio.wait_for(self._clock_wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    # --- durability ---

    async def _flush_loop(self) -> None:
        delay = 0.5
        while True:
            await self._flush_wanted.wait()
            if len(self._unacked) < self._flush_messages:
                await asyncio.sleep(FLUSH_SECONDS)  # let a batch gather
            self._flush_wanted.clear()
            try:
                await self._flush()
                delay = 0.5
            except Exception as exc:  # noqa: BLE001 - retried; nothing is acked
                log.error("flush failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                self._flush_wanted.set()

    async def _flush(self) -> None:
        # Snapshot synchronously: everything below covers exactly these messages and states.
        signals, self._signals = self._signals, []
        messages, self._unacked = self._unacked, []
        dirty, self.core.dirty = self.core.dirty, set()
        docs = [to_doc(self.core.states[d]) for d in dirty]
        try:
            # pipelined confirms; notify does not depend on the order of signals (see store.apply)
            await publish_all_confirmed(
                self.broker,
                [
                    (
                        self.topology.alert_signals,
                        alert_routing_key(signal.severity, signal.rule_id, signal.dealer_id),
                        signal.model_dump_json().encode(),
                        f"{signal.alert_id}:{signal.state}:{signal.firing_count}",
                    )
                    for signal in signals
                ],
                timeout=self.settings.publish_timeout_seconds,
            )
            await self.store.save_docs(docs)
        except Exception:
            # put everything back in front, to be retried in order (re-publishing is idempotent)
            self._signals[:0] = signals
            self._unacked[:0] = messages
            self.core.dirty |= dirty
            raise
        await _ack_all(messages)


async def _ack_all(messages: list[RabbitMessage]) -> None:
    """One `multiple` ack per channel, on its newest message: messages are handled one at a time
    in delivery order, so every earlier delivery on that channel is in this batch, an earlier
    one, or was already settled (dead-lettered or requeued). One frame instead of one per
    message (acking one by one cost ~1 ms each, more than the database write)."""
    newest: dict[int, RabbitMessage] = {}
    for message in messages:
        newest[id(message.raw_message.channel)] = message
    for message in newest.values():
        try:
            await message.ack(multiple=True)
        except Exception as exc:  # noqa: BLE001 - channel gone: the broker redelivers, we dedup
            log.warning("could not ack a batch (%s); it will be redelivered and deduplicated", exc)
