"""Consumes alert signals: store each (ack only after the write), then wake the sender."""

from __future__ import annotations

import asyncio
import logging

from faststream.rabbit import RabbitBroker, RabbitMessage
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from services.common.alerts import AlertSignal, PromotionEvaluation, rules_output_adapter
from services.common.consuming import reject, retry_or_reject, settle, subscribe
from services.common.health import Health
from services.common.settings import Settings
from services.common.topology import Topology

from .delivery import DeliveryWorker
from .evaluations import Evaluations
from .matchers import labels_of
from .router import Router
from .signals import SignalIntake

log = logging.getLogger("dealerwatch.notify")


class SignalConsumer:
    def __init__(
        self,
        broker: RabbitBroker,
        intake: SignalIntake,
        evaluations: Evaluations,
        worker: DeliveryWorker,
        router: Router,
        settings: Settings,
        health: Health,
    ):
        self._broker = broker
        self._health = health
        self._intake, self._evaluations = intake, evaluations
        self._worker = worker
        self._router = router
        self._settings = settings
        self._topology = Topology(settings.namespace, settings.partitions)
        subscribe(broker, self._topology.notify_queue, self.on_message, prefetch=settings.prefetch, title="notify: alert signals")

    async def on_message(self, body: bytes) -> None:
        message: RabbitMessage = self._broker.context.get_local("message")
        try:
            signal = rules_output_adapter.validate_json(body)
        except ValidationError as exc:
            await self._dead_letter(message, f"invalid alert signal: {exc.errors(include_url=False)[:3]}")
            return
        try:
            created = await self._store_until_reachable(signal)
        except Exception as exc:  # noqa: BLE001 - not an outage: bounded retries, then dead-letter
            await retry_or_reject(
                self._broker, self._topology, message, exc, max_attempts=self._settings.max_attempts, stage="notify"
            )
            return
        await settle(message.ack(), message, "ack")
        if created and isinstance(signal, AlertSignal):
            log.info("new alert %s %s %s: %s", signal.alert_id, signal.rule_id, signal.dealer_id, signal.summary)
            self._worker.wake()

    async def _store_until_reachable(self, signal: AlertSignal | PromotionEvaluation) -> bool:
        """A database outage is waited out (the message stays unacked), never dead-lettered."""
        delay = 0.5
        while True:
            try:
                if isinstance(signal, PromotionEvaluation):
                    await self._evaluations.keep(signal)
                    self._health.ok("alert signals")
                    return False
                created = await self._intake.apply(signal, self._router.plans(labels_of(signal.model_dump())))
                self._health.ok("alert signals")
                return created
            except ConnectionFailure as exc:
                self._health.failed("alert signals", exc)
                log.warning("database unreachable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _dead_letter(self, message: RabbitMessage, reason: str) -> None:
        await reject(self._broker, self._topology, message, reason, stage="notify")
