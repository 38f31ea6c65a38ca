"""Dead-lettering with a reason: the message body is kept as it was, the reason travels in
headers, so an operator can read why and replay it once the cause is fixed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faststream.rabbit import RabbitBroker

from .broker import publish_confirmed
from .topology import ERROR_HEADER, STAGE_HEADER, Topology

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
    await publish_confirmed(
        broker,
        topology.dead_letter,
        routing_key,
        body,
        message_id=message_id,
        headers={**(headers or {}), ERROR_HEADER: reason[:4000], STAGE_HEADER: stage, "x-original-routing-key": routing_key},
    )
