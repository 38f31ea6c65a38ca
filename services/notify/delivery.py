"""Sends stored alerts to their receivers, retrying with exponential backoff.

Works from the outbox kept on each alert (outbox.py), so a delivery survives a notify restart
and several instances can run: an alert is claimed with a lease, and with it the other alerts
of a group it heads (one message for the group). An alert goes to all its receivers at once;
a receiver that hangs or fails is left alone for a while (health.py), so it delays only its
own deliveries. Reminders and escalation add notices to the outbox (run_schedules).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.common.batching import wait_at_most
from services.common.settings import Settings
from services.common.timeutil import utcnow

from .alert import public_view
from .channels.base import DeliveryFailed
from .health import ReceiverHealth
from .metrics import DELIVERIES, DELIVERY_SECONDS, channel_kind
from .outbox import Outbox
from .router import Router

# what to do with a notification that failed its last attempt: (alert, delivery), e.g. dead-letter it
FailedDelivery = Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]]

log = logging.getLogger("dealerwatch.notify.delivery")

LEASE_SECONDS = 60.0
# An idle worker sleeps until the next thing is due, or until woken (a new alert, a notice
# queued, a delivery finished), and reads the outbox at least this often (#14: an idle notify
# costs the database under one operation a second)
IDLE_SECONDS = 30.0
BUSY_SECONDS = 1.0  # something is due but leased by another instance: look again after this
CONCURRENCY = 8
SCHEDULE_SECONDS = 0.5  # the shortest pause between two looks for due reminders and escalations


class DeliveryWorker:
    def __init__(self, outbox: Outbox, router: Router, settings: Settings, on_failed: FailedDelivery | None = None):
        self._outbox = outbox
        self._router = router
        self._on_failed = on_failed
        self._settings = settings
        self._scheduled = asyncio.Event()  # a new alert: its reminder or escalation may be the next due
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._running: set[asyncio.Task[None]] = set()
        self._health = self.receivers = ReceiverHealth(
            settings.delivery_retry_initial_seconds, settings.delivery_retry_max_seconds
        )

    def wake(self) -> None:
        """Something may be due now: a new alert was stored."""
        self._outbox.queued.set()
        self._scheduled.set()

    async def run(self) -> None:
        while True:
            await self._slots.acquire()
            self._outbox.queued.clear()  # before the claim: a notice queued after it wakes the wait below
            try:
                alert = await self._outbox.claim_due_delivery(LEASE_SECONDS)
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                log.warning("cannot read the delivery outbox: %s", exc)
                alert = None
            if alert is None:
                self._slots.release()
                await wait_at_most(self._outbox.queued, await self._until_next_delivery())
                continue
            try:  # before the next claim, so that this worker does not send a member on its own
                groups = await self._claim_groups(alert)
            except Exception as exc:  # noqa: BLE001 - the lease expires and another attempt follows
                log.warning("cannot claim the group of alert %s: %s", alert["_id"], exc)
                self._slots.release()
                continue
            task = asyncio.create_task(self._deliver(alert, groups))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _claim_groups(self, alert: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """The other alerts in the groups of this alert's due deliveries, claimed with it."""
        now = utcnow()
        groups = {}
        for delivery in alert.get("deliveries", []):
            if delivery.get("group") and delivery["status"] == "pending" and delivery["next_attempt_at"] <= now:
                groups[delivery["group"]] = await self._outbox.claim_group(delivery["group"], alert["_id"], LEASE_SECONDS)
        return groups

    async def _deliver(self, alert: dict[str, Any], groups: dict[str, list[dict[str, Any]]]) -> None:
        try:
            now = utcnow()
            sends = []
            for index, delivery in enumerate(alert.get("deliveries", [])):
                if delivery["status"] != "pending" or delivery["next_attempt_at"] > now:
                    continue
                members = groups.get(delivery.get("group"), [])
                sends.append((delivery["receiver"], [(alert, index)] + [(m, _pending_in(m, delivery["group"])) for m in members]))
            # to every receiver at once: a slow one does not delay the others, and whatever one
            # of them does, what the others answered is recorded (else they would hear it again)
            results = await asyncio.gather(*(self._send(receiver, batch) for receiver, batch in sends), return_exceptions=True)
            for (receiver, _), result in zip(sends, results, strict=True):
                if isinstance(result, BaseException):
                    log.error("sending alert %s to %s failed unexpectedly", alert.get("_id"), receiver, exc_info=result)
            for member in {id(m): m for _, batch in sends for m, _ in batch[1:]}.values():
                await self._outbox.record_deliveries(member["_id"], _attempted(member))
            await self._outbox.record_deliveries(alert["_id"], _attempted(alert))
        except Exception:
            log.exception("delivering alert %s failed unexpectedly", alert.get("_id"))
        finally:
            self._slots.release()
            self._outbox.queued.set()  # its retry may be the next thing due

    async def _until_next_delivery(self) -> float:
        """Seconds until the next delivery is due (IDLE_SECONDS at most)."""
        try:
            due = await self._outbox.next_delivery_due()
        except Exception as exc:  # noqa: BLE001 - the database may be briefly away
            log.warning("cannot read the delivery outbox: %s", exc)
            return BUSY_SECONDS
        return _seconds_until(due, minimum=BUSY_SECONDS)

    async def _send(self, receiver: str, batch: list[tuple[dict[str, Any], int]]) -> None:
        """One message to one receiver about one alert or a group; the outcome is written into
        each alert's delivery entry (in place)."""
        entries = []
        for alert, index in batch:
            delivery = alert["deliveries"][index]
            delivery["attempted"] = True
            if alert.get("silenced_by"):  # silenced after the notification was queued
                delivery.update(status="silenced", last_error=f"silenced by {', '.join(alert['silenced_by'])}")
                DELIVERIES.labels(channel_kind(self._router.channel(receiver)), "silenced").inc()
                continue
            payload = {
                **public_view(alert),
                "notification": delivery.get("kind", "firing"),
                "notification_id": f"{alert['alert_id']}/{index}",
            }
            entries.append((delivery, payload))
        if not entries:
            return
        if (later := self._health.wait_until(receiver, utcnow())) is not None:
            for delivery, _ in entries:  # the receiver is busy or resting: not an attempt
                delivery["next_attempt_at"] = max(delivery["next_attempt_at"], later)
            return
        channel = self._router.channel(receiver)
        kind = channel_kind(channel)
        error, answered = None, False
        self._health.started(receiver)
        try:
            if channel is None:
                raise DeliveryFailed(f"receiver {receiver!r} is no longer configured")
            with DELIVERY_SECONDS.labels(kind).time():
                await channel.send([payload for _, payload in entries])
            answered = True
        except DeliveryFailed as exc:
            error = exc.reason
            log.info("alert %s to %s: %s", entries[0][1]["alert_id"], receiver, exc.detail)
        except Exception as exc:
            error = f"unexpected error ({type(exc).__name__})"
            log.warning("alert %s to %s failed unexpectedly", entries[0][1]["alert_id"], receiver, exc_info=exc)
        finally:
            self._health.finished(receiver, answered, utcnow())
        now = utcnow()
        for delivery, payload in entries:
            delivery["attempts"] += 1
            delivery.setdefault("log", []).append({"at": now, "outcome": "delivered" if error is None else error})
            if error is None:
                delivery.update(status="delivered", delivered_at=now, last_error=None)
                DELIVERIES.labels(kind, "delivered").inc()
            elif delivery["attempts"] >= self._settings.delivery_max_attempts or channel is None:
                DELIVERIES.labels(kind, "gave_up").inc()
                delivery.update(status="failed", last_error=error)
                log.error("giving up on alert %s to %s: %s", payload["alert_id"], receiver, error)
                await self._dead_letter(payload, delivery)
            else:
                DELIVERIES.labels(kind, "failed").inc()
                delay = min(
                    self._settings.delivery_retry_initial_seconds * 2 ** (delivery["attempts"] - 1),
                    self._settings.delivery_retry_max_seconds,
                )
                delivery.update(last_error=error, next_attempt_at=now + dt.timedelta(seconds=delay))
                log.warning(
                    "alert %s to %s failed (%s); retry %d in %.1fs",
                    payload["alert_id"],
                    receiver,
                    error,
                    delivery["attempts"],
                    delay,
                )

    async def _dead_letter(self, payload: dict[str, Any], delivery: dict[str, Any]) -> None:
        if self._on_failed is None:
            return
        try:
            await self._on_failed(payload, delivery)
        except Exception as error:  # noqa: BLE001 - the failure stays recorded on the alert
            log.warning("could not dead-letter the failed delivery: %s", error)

    async def run_schedules(self) -> None:
        """Reminders for alerts that stay open, escalation of critical ones nobody acknowledged:
        claimed when due, then a sleep until the next one is (or a new alert arrives)."""
        while True:
            self._scheduled.clear()
            try:
                while (alert := await self._outbox.due_reminder()) is not None:
                    receivers = [(r["receiver"], r["target"]) for r in alert["routes"] if r.get("repeat_seconds")]
                    await self._outbox.add_notices(alert["_id"], "repeat", receivers)
                while (escalated := await self._outbox.escalate_due(self._router.target)) is not None:
                    alert, names = escalated
                    log.warning("alert %s not acknowledged in time: escalated to %s", alert["_id"], ", ".join(names))
                wait = _seconds_until(await self._outbox.next_schedule_due(), minimum=SCHEDULE_SECONDS)
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                log.warning("reminders and escalation paused: %s", exc)
                wait = SCHEDULE_SECONDS
            looked = asyncio.get_running_loop().time()
            await wait_at_most(self._scheduled, wait)
            # woken by new alerts: at most one look per SCHEDULE_SECONDS all the same (a burst of alerts)
            await asyncio.sleep(max(0.0, looked + SCHEDULE_SECONDS - asyncio.get_running_loop().time()))


def _seconds_until(due: dt.datetime | None, minimum: float) -> float:
    if due is None:
        return IDLE_SECONDS
    return min(max((due - utcnow()).total_seconds(), minimum), IDLE_SECONDS)


def _pending_in(alert: dict[str, Any], group: str) -> int:
    return next(i for i, d in enumerate(alert["deliveries"]) if d.get("group") == group and d["status"] == "pending")


def _attempted(alert: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {index: d for index, d in enumerate(alert.get("deliveries", [])) if d.pop("attempted", False)}
