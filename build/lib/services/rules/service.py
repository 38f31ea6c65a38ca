"""The live rules service: consume events -> Judge (core + clock) -> publish outputs.

Durability, in this order, for a batch of handled messages:
  1. alert signals and promotion evaluations are published and confirmed,
  2. the states of the dealers they touched are written to MongoDB,
  3. only then are the messages acked.
A crash anywhere before 3 redelivers the messages onto the last written state,
which reproduces the same outputs (notify treats them idempotently). Batching
(a flush every `FLUSH_SECONDS` or half a prefetch window) is where the speed
comes from: one bulk write and one ack frame per batch.

The clock follows wall time, except while events are streaming in: then it
follows the newest event time seen (a backfill of old events is judged as it
happened, as a backtest would judge it).
"""

from __future__ import annotations

import asyncio
import logging
import time

from faststream.rabbit import RabbitMessage
from pydantic import ValidationError

from services.common.alerts import AlertSignal
from services.common.broker import connect_with_retry, make_broker, publish_all_confirmed
from services.common.consuming import ack_batch, reject, retry_or_reject, subscribe
from services.common.events import parse_event
from services.common.settings import Settings
from services.common.topology import Topology, alert_routing_key, declare, evaluation_routing_key

from .core import Output, RulesCore, TooLate
from .judge import Judge
from .policy import Policy
from .state import ts
from .store import StateStore, to_doc

log = logging.getLogger("dealerwatch.rules")

FLUSH_SECONDS = 0.02
STREAMING_SECONDS = 2.0  # events within this long ago mean "streaming": the clock follows them


class RulesService:
    def __init__(self, settings: Settings, policy: Policy):
        self.settings = settings
        self.topology = Topology(settings.namespace)
        self.core = RulesCore(policy)
        self.judge = Judge(self.core)
        self.store = StateStore(settings)
        self.broker = make_broker(settings)
        self.ready = False
        self._outputs: list[Output] = []
        self._unacked: list[RabbitMessage] = []
        self._flush_wanted = asyncio.Event()
        self._clock_wakeup = asyncio.Event()
        self._clock_target = float("inf")
        self._watermark = float("-inf")  # newest event time seen
        self._last_event_wall = 0.0
        self._tasks: list[asyncio.Task] = []
        self._flush_messages = max(1, settings.prefetch // 2)
        subscribe(self.broker, self.topology.rules_queue, self.on_message, prefetch=settings.prefetch, title="rules: events")

    async def start(self) -> None:
        self.core.states.update(await self.store.load_all())
        for dealer_id in self.core.states:
            self.judge.schedule(dealer_id)
        log.info("loaded %d dealer states; policy %s", len(self.core.states), self.core.policy.version)
        await connect_with_retry(self.broker, start=False)
        await self.broker.start()  # first: the consumer declares its queue on its own channel
        await declare(self.broker, self.topology)
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

    def use_policy(self, policy: Policy) -> None:
        """Hot reload: new rules from the next judgement on; dealer state is kept."""
        self._outputs += self.core.use(policy)
        for dealer_id in self.core.states:
            self.judge.schedule(dealer_id)
        self._clock_wakeup.set()
        self._flush_wanted.set()

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
        now = time.time()
        try:
            outputs, _ = self.judge.handle(event, now=now)
        except TooLate as exc:
            await self._dead_letter(message, f"too late: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
            await self._retry_or_dead_letter(message, exc)
            return
        self._watermark = max(self._watermark, ts(event.occurred_at))
        self._last_event_wall = now
        self._outputs += outputs
        next_time = self.judge.clock.next_time()
        if next_time is not None and next_time < self._clock_target:
            self._clock_wakeup.set()
        self._unacked.append(message)
        self._flush_wanted.set()

    async def _dead_letter(self, message: RabbitMessage, reason: str) -> None:
        await reject(self.broker, self.topology, message, reason, stage="rules")

    async def _retry_or_dead_letter(self, message: RabbitMessage, exc: Exception) -> None:
        await retry_or_reject(self.broker, self.topology, message, exc, max_attempts=self.settings.max_attempts, stage="rules")

    # --- the clock ---

    def clock_now(self) -> float:
        wall = time.time()
        streaming = wall - self._last_event_wall < STREAMING_SECONDS
        return min(wall, self._watermark) if streaming else wall

    async def _clock_loop(self) -> None:
        while True:
            now = self.clock_now()
            outputs = self.judge.advance(now)
            if outputs:
                self._outputs += outputs
                self._flush_wanted.set()
            next_time = self.judge.clock.next_time()
            self._clock_target = next_time if next_time is not None else float("inf")
            timeout = self.settings.clock_max_sleep_seconds
            if next_time is not None:
                timeout = min(max(next_time - now, 0.05), timeout)
            if time.time() - self._last_event_wall < STREAMING_SECONDS:
                timeout = min(timeout, STREAMING_SECONDS)  # re-check when streaming stops
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
        outputs, self._outputs = self._outputs, []
        messages, self._unacked = self._unacked, []
        dirty, self.core.dirty = self.core.dirty, set()
        docs = [to_doc(self.core.states[d]) for d in dirty if d in self.core.states]
        try:
            # pipelined confirms; notify does not depend on the order of outputs (see its store)
            await publish_all_confirmed(
                self.broker,
                [(self.topology.alert_signals, _routing_key(o), o.model_dump_json().encode(), _message_id(o)) for o in outputs],
                timeout=self.settings.publish_timeout_seconds,
            )
            await self.store.save_docs(docs)
        except Exception:
            # put everything back in front, to be retried (re-publishing is idempotent)
            self._outputs[:0] = outputs
            self._unacked[:0] = messages
            self.core.dirty |= dirty
            raise
        await ack_batch(messages)


def _routing_key(output: Output) -> str:
    if isinstance(output, AlertSignal):
        return alert_routing_key(output.severity, output.rule_id, output.dealer_id)
    return evaluation_routing_key(output.dealer_id)


def _message_id(output: Output) -> str:
    if isinstance(output, AlertSignal):
        return f"{output.alert_id}:{output.state}:{output.firing_count}"
    return f"evaluation:{output.dealer_id}:{output.promotion_id}"
