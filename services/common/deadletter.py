"""Dead-lettering with a reason: the message body is kept as it was, the reason travels in
headers, so an operator can read why and replay it once the cause is fixed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faststream.rabbit import RabbitBroker

from .broker import publish_confirmed
from .metrics import DEAD_LETTERED, reason_kind
from .timeutil import utcnow
from .topology import AT_HEADER, ERROR_HEADER, KIND_HEADER, STAGE_HEADER, Topology

if TYPE_CHECKING:
    from .consuming import Delivered


async def dead_letter(broker: RabbitBroker, topology: Topology, message: Delivered, reason: str, *, stage: str) -> None:
    """A consumed message, as it was."""
    raw = message.raw_message
    await dead_letter_body(
        broker,
        topology,
        raw.body,
        raw.routing_key or "",
        raw.message_id or "",
        reason,
        stage=stage,
        headers={**(raw.headers or {}), "x-original-exchange": raw.exchange or ""},
    )


async def dead_letter_body(
    broker: RabbitBroker,
    topology: Topology,
    body: bytes,
    routing_key: str,
    message_id: str,
    reason: str,
    *,
    stage: str,
    headers: dict[str, Any] | None = None,
) -> None:
    """Any message body (a consumed message, or an output that could not be published)."""
    kind = kind_of(topology, stage, (headers or {}).get("x-original-exchange", ""))
    await publish_confirmed(
        broker,
        topology.dead_letter,
        routing_key,
        body,
        message_id=message_id,
        headers={
            **(headers or {}),
            ERROR_HEADER: reason[:4000],
            STAGE_HEADER: stage,
            KIND_HEADER: kind,
            AT_HEADER: utcnow().isoformat(),
            "x-original-routing-key": routing_key,
        },
    )
    DEAD_LETTERED.labels(kind, reason_kind(reason)).inc()


def kind_of(topology: Topology, stage: str, exchange: str) -> str:
    """What a dead letter was: an event, a rules output (signal), or a delivery."""
    if stage == "notify.delivery":
        return "deliveries"
    if stage == "rules.output" or exchange == topology.alert_signals.name:
        return "signals"
    return "events"
