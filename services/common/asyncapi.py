"""The AsyncAPI document of dealerwatch's messages, built from the shared models and topology.

Handlers here are documentation stand-ins: each service registers its real
subscriber with the same queue and message type.
"""

from __future__ import annotations

from faststream.rabbit import RabbitBroker
from faststream.specification import AsyncAPI

from .alerts import AlertSignal
from .events import Event
from .topology import Topology


def document(namespace: str = "dealerwatch") -> AsyncAPI:
    topology = Topology(namespace)
    broker = RabbitBroker(description="Events from POS/ERP systems and the alert signals derived from them.")

    @broker.subscriber(
        topology.rules_queue(0),
        exchange=topology.events,
        title="rules: events",
        description="Validated v1 events; routing key p<N>.<type>.<dealer_id>, N the dealer's partition "
        "(services/common/partitions.py); one queue per partition, <namespace>.rules.p<N>.",
    )
    @broker.publisher(
        exchange=topology.alert_signals,
        routing_key="{severity}.{rule_id}.{dealer_id}",
        title="rules: alert signals",
        description="firing/resolved per episode; routing key <severity>.<rule_id>.<dealer_id>.",
        schema=AlertSignal,
    )
    async def rules(event: Event) -> AlertSignal:  # pragma: no cover - documentation only
        raise NotImplementedError

    @broker.subscriber(topology.notify_queue, exchange=topology.alert_signals, title="notify: alert signals")
    async def notify(signal: AlertSignal) -> None:  # pragma: no cover - documentation only
        raise NotImplementedError

    return AsyncAPI(broker, title="dealerwatch messages", version="1", schema_version="3.0.0")
