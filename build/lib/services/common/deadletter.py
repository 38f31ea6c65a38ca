"""Dead-lettering with a reason: the message body is kept as it was, the reason travels in
headers, so an operator can read why and replay it once the cause is fixed."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker, RabbitMessage


from .broker import publish_confirmed
from .topology import ERROR_HEADER, STAGE_HEADER, Topology


async def dead_letter(broker: RabbitBroker, topology: Topology, message: RabbitMessage, reason: str, *, stage: str) -> None:
    raw = message.raw_message
    headers = dict(raw.headers or {})
    headers.update(
        {
            ERROR_HEADER: reason[:4000],
            STAGE_HEADER: stage,
            "x-original-exchange": raw.exchange or "",
            "x-original-routing-key": raw.routing_key or "",
        }
    )
    await publish_confirmed(
        broker,
        topology.dead_letter,
        raw.routing_key or "",
        raw.body,
        message_id=raw.message_id or "",
        headers=headers,
    )
