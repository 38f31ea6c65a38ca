"""Sends stored alerts to their receivers, retrying with exponential backoff.

Works from the outbox kept on each alert, so a receiver that is down delays
only its own deliveries: alerts keep being stored, and a delivery survives a
notify restart. Several instances can run: an alert is claimed with a lease.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from services.common.settings import Settings

from .channels.base import DeliveryFailed
from .store import AlertStore, utcnow

log = logging.getLogger("dealerwatch.notify.delivery")

LEASE_SECONDS = 60.0
IDLE_POLL_SECONDS = 1.0
CONCURRENCY = 8
SCHEDULE_SECONDS = 0.5


class DeliveryWorker:
    def __init__(self, store: AlertStore, router, settings: Settings, on_failed=None):
        self._store = store
        self._router = router
        self._on_failed = on_failed  # async (alert, delivery): e.g. to the dead-letter queue
        self._settings = settings
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._running: set[asyncio.Task] = set()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                alert = await self._store.claim_due_delivery(LEASE_SECONDS)
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                log.warning("cannot read the delivery outbox: %s", exc)
                alert = None
            if alert is None:
                self._slots.release()
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL_SECONDS)
                except asyncio.TimeoutError:
                    pass
                continue
            task = asyncio.create_task(self._deliver(alert))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _deliver(self, alert: dict) -> None:
        try:
            payload = public_view(alert)
            now = utcnow()
            attempted = {}
            for index, delivery in enumerate(alert.get("deliveries", [])):
                if delivery["status"] != "pending" or delivery["next_attempt_at"] > now:
                    continue
                delivery = dict(delivery)
                await self._attempt(delivery, {**payload, "notification": delivery.get("kind", "firing")})
                attempted[index] = delivery
            await self._store.record_deliveries(alert["_id"], attempted)
        except Exception:  # noqa: BLE001 - the lease expires and another attempt follows
            log.exception("delivering alert %s failed unexpectedly", alert.get("_id"))
        finally:
            self._slots.release()

    async def _attempt(self, delivery: dict, payload: dict) -> None:
        channel = self._router.channel(delivery["receiver"])
        delivery["attempts"] += 1
        try:
            if channel is None:
                raise DeliveryFailed(f"receiver {delivery['receiver']!r} is no longer configured")
            await channel.send(payload)
        except DeliveryFailed as exc:
            delivery["last_error"] = str(exc)
            if delivery["attempts"] >= self._settings.webhook_max_attempts or channel is None:
                delivery["status"] = "failed"
                log.error("giving up on alert %s to %s: %s", payload["alert_id"], delivery["receiver"], exc)
                if self._on_failed is not None:
                    try:
                        await self._on_failed(payload, delivery)
                    except Exception as error:  # noqa: BLE001 - the failure stays recorded on the alert
                        log.warning("could not dead-letter the failed delivery: %s", error)
            else:
                delay = min(
                    self._settings.webhook_retry_initial_seconds * 2 ** (delivery["attempts"] - 1),
                    self._settings.webhook_retry_max_seconds,
                )
                delivery["next_attempt_at"] = utcnow() + dt.timedelta(seconds=delay)
                log.warning(
                    "alert %s to %s failed (%s); retry %d in %.1fs",
                    payload["alert_id"], delivery["receiver"], exc, delivery["attempts"], delay,
                )
            return
        delivery["status"] = "delivered"
        delivery["delivered_at"] = utcnow()
        delivery["last_error"] = None


    async def run_schedules(self) -> None:
        """Reminders for alerts that stay open, escalation of critical ones nobody acknowledged."""
        while True:
            try:
                while (alert := await self._store.due_reminder()) is not None:
                    receivers = [(r["receiver"], r["target"]) for r in alert["routes"] if r.get("repeat_seconds")]
                    await self._store.add_notices(alert["_id"], "repeat", receivers)
                    self.wake()
                while (alert := await self._store.due_escalation()) is not None:
                    names = dict.fromkeys(n for r in alert["routes"] if r.get("escalate_after_seconds") for n in r["escalate_to"])
                    await self._store.add_notices(alert["_id"], "escalation", [(n, self._router.target(n)) for n in names])
                    log.warning("alert %s not acknowledged in time: escalated to %s", alert["_id"], ", ".join(names))
                    self.wake()
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                log.warning("reminders and escalation paused: %s", exc)
            await asyncio.sleep(SCHEDULE_SECONDS)


def public_view(alert: dict) -> dict:
    """What receivers and API clients see of an alert."""
    hidden = {"_id", "delivery_due_at", "delivery_lease_until", "deliveries", "routes", "reminder_due_at", "escalation_due_at"}
    return {key: value for key, value in alert.items() if key not in hidden}
