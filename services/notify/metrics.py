"""Notify's metrics. Counters are counted where things happen (consumer.py, delivery.py,
api/alerts.py); what the database holds (active alerts by status and severity, deliveries
waiting, the change log's lag behind the `alerts` exchange) is read when Prometheus scrapes
(`read`), and what the process holds (receivers resting) at each scrape."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.alerts import SEVERITY_RANK
from services.common.events import EARLIEST
from services.common.timeutil import utcnow

from .alert import ACTIVE

if TYPE_CHECKING:
    from prometheus_client import Metric

    from .health import ReceiverHealth
    from .store import AlertStore

log = logging.getLogger("dealerwatch.notify")

READ_SECONDS = 5.0
SIGNALS_STORED = Counter("dealerwatch_notify_signals_stored_total", "Alert signals from rules stored, by state.", ["state"])
DELIVERIES = Counter(
    "dealerwatch_notify_deliveries_total",
    "Notifications sent, by channel (webhook, email, wecom, ...) and outcome: delivered, failed (to be retried), "
    "gave_up (dead-lettered), silenced.",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram("dealerwatch_notify_delivery_seconds", "One send to a receiver, by channel.", ["channel"])
SSE_CLIENTS = Gauge("dealerwatch_notify_sse_clients", "Live streams (GET /v1/alerts/stream) open now.")
ALERTS = Gauge("dealerwatch_notify_alerts", "Alerts someone still has to act on, by status and severity.", ["status", "severity"])
WAITING = Gauge("dealerwatch_notify_deliveries_waiting", "Alerts with a notification due now or overdue.")
CHANGE_LAG = Gauge("dealerwatch_notify_change_log_lag", "Alert changes logged and not yet published to the alerts exchange.")
for _state in ("firing", "resolved"):
    SIGNALS_STORED.labels(_state)


def channel_kind(channel: Any) -> str:
    """webhook, email, wecom, dingtalk, feishu, slack (the channel's class), unknown for none."""
    return "unknown" if channel is None else type(channel).__name__.removesuffix("Channel").lower()


class Resting(Collector):
    def __init__(self, health: ReceiverHealth):
        self._health = health

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "dealerwatch_notify_receivers_resting",
            "Receivers resting after failures (back-off).",
            value=self._health.resting(utcnow()),
        )


def register(health: ReceiverHealth) -> Collector:
    collector = Resting(health)
    REGISTRY.register(collector)
    return collector


_last_read = {"at": 0.0}


async def read(store: AlertStore) -> None:
    """The database's part, when Prometheus scrapes (at most every READ_SECONDS: an idle notify
    nobody scrapes costs nothing): counts by index, never a scan of the history."""
    if time.monotonic() - _last_read["at"] < READ_SECONDS:
        return
    _last_read["at"] = time.monotonic()
    try:
        for status in ACTIVE:
            for severity in SEVERITY_RANK:
                count = await store.collection.count_documents({"status": status, "severity": severity})
                ALERTS.labels(status, severity).set(count)
        WAITING.set(await store.collection.count_documents({"delivery_due_at": {"$gte": EARLIEST, "$lte": utcnow()}}))
        CHANGE_LAG.set(max(0, await store.changes.last() - await store.changes.cursor("alerts-exchange")))
    except Exception as exc:  # noqa: BLE001 - the database may be away: the gauges keep their last values
        log.debug("notify's gauges not read this scrape: %s", exc)
