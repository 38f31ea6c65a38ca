"""The consumer side shared by rules and notify: manual acks, raw bodies, bounded retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage, RabbitQueue

from .broker import cancelled_by_the_client
from .deadletter import dead_letter
from .topology import Topology

log = logging.getLogger(__name__)


async def _raw_body(message: RabbitMessage) -> bytes:
    return message.body


def subscribe(
    broker: RabbitBroker, queue: RabbitQueue, handler: Callable[[bytes], Awaitable[None]], *, prefetch: int, title: str
) -> None:
    """`handler(body: bytes)` gets every message undecoded; it acks or rejects it itself (the
    current message is `broker.context.get_local("message")`).

    Messages are handled one at a time, in delivery order: the broker client starts a task per
    delivery, which would let a later message overtake one that waits (on the database, or
    before a retry). In order, a batch's `multiple` ack never covers an unsettled message."""
    turn = asyncio.Lock()  # FIFO: waiters are served in the order they arrived

    async def in_order(body: bytes) -> None:
        async with turn:
            await handler(body)

    in_order.__name__ = getattr(handler, "__name__", "handler")
    broker.subscriber(
        queue,
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_body,
        channel=Channel(prefetch_count=prefetch),
        title=title,
    )(in_order)


async def reject(broker: RabbitBroker, topology: Topology, message: RabbitMessage, reason: str, *, stage: str) -> None:
    """Dead-letter with the reason, then ack: the message is kept there, never lost or looping."""
    log.warning("dead-lettering message %s: %s", message.message_id, reason)
    await dead_letter(broker, topology, message, reason, stage=stage)
    try:
        await message.ack()
    except asyncio.CancelledError as exc:  # the channel closed: redelivered, dead-lettered again
        if not cancelled_by_the_client(exc):
            raise
        log.warning("could not ack dead-lettered message %s; it will be redelivered", message.message_id)


async def retry_or_reject(
    broker: RabbitBroker, topology: Topology, message: RabbitMessage, exc: BaseException, *, max_attempts: int, stage: str
) -> None:
    """A handler failure: requeue after a growing pause, until `max_attempts`, then dead-letter."""
    attempt = int((message.headers or {}).get("x-delivery-count", 0)) + 1
    if attempt >= max_attempts:
        await reject(broker, topology, message, f"failed {attempt} times: {type(exc).__name__}: {exc}", stage=stage)
        return
    log.exception("handling message %s failed (attempt %d)", message.message_id, attempt)
    await asyncio.sleep(min(0.1 * 2**attempt, 5.0))  # no hot loop
    await message.nack(requeue=True)


async def ack_batch(messages: list[RabbitMessage]) -> None:
    """One `multiple` ack per channel, on its newest message: messages are handled one at a time
    in delivery order (subscribe), so every earlier delivery on that channel is in this batch,
    an earlier one, or was already settled (dead-lettered or requeued). One frame instead of one
    per message (acking one by one cost ~1 ms each, more than a batched database write).
    Each consumer needs its own channel, or a `multiple` ack settles another consumer's
    messages: `subscribe` gives each one, provided the queues are declared after
    `broker.start()` (see topology.declare)."""
    newest: dict[int, RabbitMessage] = {}
    for message in messages:
        newest[id(message.raw_message.channel)] = message
    for message in newest.values():
        try:
            await message.ack(multiple=True)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not cancelled_by_the_client(exc):
                raise
            log.warning("could not ack a batch (%s); it will be redelivered", exc)
