"""Consumes alert signals in batches: what arrived while the last batch was being stored is
stored together (new alerts in one bulk write, their change-log entries in one insert), then
acked with one frame, and the sender is woken. Only an ack after the write: nothing acked is lost."""

from __future__ import annotations

import asyncio
import logging

from faststream.rabbit import RabbitBroker, RabbitMessage
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from services.common.alerts import AlertSignal, DealerStanding, PromotionEvaluation, SupportEvaluation, rules_output_adapter
from services.common.batching import flush_forever
from services.common.consuming import ack_batch, reject, retry_or_reject, settle, subscribe
from services.common.health import Health
from services.common.settings import Settings
from services.common.topology import Topology

from .dealers.evaluations import Evaluations
from .delivery import DeliveryWorker
from .matchers import labels_of
from .metrics import SIGNALS_STORED
from .router import Router
from .signals import SignalIntake
from .support.evaluations import SupportEvaluations
from .support.priorities import Priorities

log = logging.getLogger("dealerwatch.notify")

GATHER_SECONDS = 0.005  # while busy: a moment for a batch to gather (idle, a signal is stored at once)
Received = tuple[AlertSignal | PromotionEvaluation | SupportEvaluation | DealerStanding, RabbitMessage]


class SignalConsumer:
    def __init__(
        self,
        broker: RabbitBroker,
        intake: SignalIntake,
        evaluations: Evaluations,
        support: tuple[Priorities, SupportEvaluations],
        worker: DeliveryWorker,
        router: Router,
        settings: Settings,
        health: Health,
    ):
        self._broker = broker
        self._health = health
        self._intake, self._evaluations = intake, evaluations
        self._priorities, self._support_evaluations = support
        self._worker = worker
        self._router = router
        self._settings = settings
        self._topology = Topology(settings.namespace, settings.partitions)
        self._pending: list[Received] = []
        self._wanted = asyncio.Event()
        subscribe(broker, self._topology.notify_queue, self.on_message, prefetch=settings.prefetch, title="notify: alert signals")

    def holding(self) -> bool:
        """Signals received and not yet settled."""
        return bool(self._pending)

    async def on_message(self, body: bytes) -> None:
        message: RabbitMessage = self._broker.context.get_local("message")
        try:
            signal = rules_output_adapter.validate_json(body)
        except ValidationError as exc:
            await reject(
                self._broker,
                self._topology,
                message,
                f"invalid alert signal: {exc.errors(include_url=False)[:3]}",
                stage="notify",
            )
            return
        self._pending.append((signal, message))
        self._wanted.set()

    async def run(self) -> None:
        await flush_forever(
            self._wanted, self._flush, name="alert signals", health=self._health, log=log, gather_seconds=GATHER_SECONDS
        )

    async def _flush(self) -> None:
        """Store the batch and ack it; an unreachable database puts it back (retried by
        flush_forever, never dead-lettered); any other failure is handled signal by signal."""
        batch, self._pending = self._pending, []
        try:
            created = await self._store(batch)
        except ConnectionFailure:
            self._pending[:0] = batch
            raise
        except Exception as exc:  # noqa: BLE001 - one bad signal must not hold the others
            log.warning("storing a batch of %d signals failed (%s); storing them one by one", len(batch), exc)
            await self._one_by_one(batch)
            return
        await ack_batch([message for _, message in batch])
        _count_stored([signal for signal, _ in batch])
        self._announce([signal for (signal, _), new in zip(batch, created, strict=True) if new])

    async def _store(self, batch: list[Received]) -> list[bool]:
        """Evaluations and standings kept, signals applied (in order); which signals created an
        alert. Support evaluations after the signals: they name the alerts resolved by then."""
        signals, later = [], []
        for item, _ in batch:
            if isinstance(item, PromotionEvaluation):
                await self._evaluations.keep(item)
            elif isinstance(item, DealerStanding):
                await self._priorities.stand(item)
            elif isinstance(item, SupportEvaluation):
                later.append(item)
            else:
                signals.append((item, *self._router.routed(labels_of(item.model_dump()), item.owner)))
        created = iter(await self._intake.apply_batch(signals))
        for evaluation in later:
            await self._support_evaluations.keep(evaluation)
        return [isinstance(item, AlertSignal) and next(created) for item, _ in batch]

    async def _one_by_one(self, batch: list[Received]) -> None:
        """Each signal on its own: bounded retries, then the dead-letter queue with the reason;
        an unreachable database is waited out (the message stays unacked)."""
        for signal, message in batch:
            while True:
                try:
                    created = await self._store([(signal, message)])
                    break
                except ConnectionFailure as exc:
                    self._health.failed("alert signals", exc)
                    await asyncio.sleep(1.0)
                except Exception as exc:  # noqa: BLE001 - not an outage: bounded retries, then dead-letter
                    await retry_or_reject(
                        self._broker, self._topology, message, exc, max_attempts=self._settings.max_attempts, stage="notify"
                    )
                    created = None
                    break
            if created is not None:
                await settle(message.ack(), message, "ack")
                _count_stored([signal])
                self._announce([signal] if created[0] else [])

    def _announce(self, created: list[AlertSignal | PromotionEvaluation | SupportEvaluation | DealerStanding]) -> None:
        for signal in created:
            assert isinstance(signal, AlertSignal)
            log.info("new alert %s %s %s: %s", signal.alert_id, signal.rule_id, signal.dealer_id, signal.summary)
        if created:
            self._worker.wake()


def _count_stored(items: list[AlertSignal | PromotionEvaluation | SupportEvaluation | DealerStanding]) -> None:
    for item in items:
        if isinstance(item, AlertSignal):
            SIGNALS_STORED.labels(item.state).inc()
