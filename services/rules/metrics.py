"""The rules service's metrics. Counters and histograms are counted where things happen (judge.py,
engine.py, service.py, reload.py); what a worker holds is read when Prometheus scrapes
(`Holding`, a collector over the running service) or, for the broker's queue depths, every few
seconds by `watch_queues`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client import Metric

    from .service import RulesService

log = logging.getLogger("dealerwatch.rules")

EVENTS_CONSUMED = Counter("dealerwatch_rules_events_consumed_total", "Events counted (a redelivered one counted once).")
JUDGEMENTS = Counter(
    "dealerwatch_rules_judgements_total",
    "Judgements of a dealer, by what caused them: event, window, age, midnight, catch-up (its own deadlines before an event).",
    ["trigger"],
)
# each trigger's child looked up once (a judgement takes a few microseconds)
JUDGED = {trigger: JUDGEMENTS.labels(trigger) for trigger in ("event", "window", "age", "midnight", "catch-up")}
ENGINE_SECONDS = Histogram(
    "dealerwatch_rules_engine_seconds",
    "One question to durable-rules (a fact asserted and retracted).",
    buckets=(0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.005, 0.05),
)
ENGINE_ANSWERS_REUSED = Counter(
    "dealerwatch_rules_engine_answers_reused",
    "Judgements answered by an earlier answer of the engine (the same outcome of every comparison).",
)
FLUSH_SECONDS = Histogram("dealerwatch_rules_flush_seconds", "One flush: outputs published, states stored, messages acked.")
FLUSH_DEALERS = Histogram(
    "dealerwatch_rules_flush_dealers", "Dealer states stored by one flush.", buckets=(0, 1, 10, 50, 100, 500, 1000, 5000)
)
QUEUE_LAG = Gauge(
    "dealerwatch_rules_queue_messages", "Messages waiting in the queue of a partition this worker owns.", ["partition"]
)
RELOADS = Counter("dealerwatch_rules_policy_reloads_total", "Policy reloads, by outcome: ok or refused.", ["outcome"])
for _outcome in ("ok", "refused"):
    RELOADS.labels(_outcome)
QUEUE_SECONDS = 5.0


class Holding(Collector):
    """What the worker holds, read at each scrape."""

    def __init__(self, service: RulesService):
        self._service = service

    def collect(self) -> Iterator[Metric]:
        service = self._service
        view = service.clock_view()
        yield GaugeMetricFamily("dealerwatch_rules_dealers", "Dealers whose state this worker holds.", value=view["dealers"])
        yield GaugeMetricFamily(
            "dealerwatch_rules_dealers_held", "Dealers held while their history arrives.", value=view["dealers_held"]
        )
        yield GaugeMetricFamily(
            "dealerwatch_rules_dealers_set_aside", "Dealers whose judgement failed, set aside.", value=view["dealers_set_aside"]
        )
        yield GaugeMetricFamily(
            "dealerwatch_rules_partitions_owned", "Partitions this worker owns.", value=len(service.partitions)
        )
        yield GaugeMetricFamily(
            "dealerwatch_rules_partitions", "Partitions there are (DEALERWATCH_PARTITIONS).", value=service.settings.partitions
        )
        yield GaugeMetricFamily(
            "dealerwatch_rules_clock_lag_seconds",
            "Wall time minus the time the clock has judged up to (the grace included).",
            value=max(0.0, time.time() - view["judged_until"]),
        )
        info = InfoMetricFamily("dealerwatch_rules_policy", "The policy running.")
        info.add_metric(
            [], {"version": service.core.policy.version, "file_errors": str(bool(service.policy_file_errors)).lower()}
        )
        yield info


def register(service: RulesService) -> Collector:
    collector = Holding(service)
    REGISTRY.register(collector)
    return collector


async def watch_queues(service: RulesService) -> None:
    """The depth of each owned partition's queue, every QUEUE_SECONDS (a passive declare)."""
    shown: set[str] = set()
    while True:
        await asyncio.sleep(QUEUE_SECONDS)
        now: set[str] = set()
        connection = service.ownership.connection
        if connection is None or connection.is_closed:
            continue
        try:  # a channel of its own: a failed passive declare closes the channel it is made on
            channel = await connection.channel()
            try:
                for number in sorted(service.partitions):
                    queue = await channel.declare_queue(service.topology.rules_queue(number).name, passive=True)
                    QUEUE_LAG.labels(str(number)).set(queue.declaration_result.message_count or 0)
                    now.add(str(number))
            finally:
                await channel.close()
        except Exception as exc:  # noqa: BLE001 - the connection is being replaced: the next round reads again
            log.debug("queue depths unknown this round: %s", exc)
            continue
        for gone in shown - now:
            QUEUE_LAG.remove(gone)
        shown = now
