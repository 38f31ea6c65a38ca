"""RabbitMQ connection and durable publishing, shared by the three services.

FastStream's defaults lose messages (non-persistent publishing, returned
messages ignored, unlimited prefetch); everything here turns those off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aiormq
from faststream.rabbit import Channel, RabbitBroker, RabbitExchange

from .settings import Settings
from .topology import shortstr

log = logging.getLogger(__name__)


Outgoing = tuple[RabbitExchange, str, bytes, str]  # exchange, routing key, body, message id


class PublishError(RuntimeError):
    """The broker did not confirm a message (down, nacked or unroutable)."""


class PublishTimeout(PublishError):
    """No confirm in time: the broker is away or overloaded, not refusing this message."""


def cancelled_by_the_client(exc: BaseException) -> bool:
    """aiormq fails the pending operations of a channel that closes (a broker restart) with
    CancelledError; only a cancellation of the running task itself is a real one."""
    task = asyncio.current_task()
    return isinstance(exc, asyncio.CancelledError) and task is not None and not task.cancelling()


def make_broker(settings: Settings, **kwargs: Any) -> RabbitBroker:
    return RabbitBroker(
        settings.amqp_url.get_secret_value(),
        default_channel=Channel(prefetch_count=settings.prefetch, publisher_confirms=True, on_return_raises=True),
        reconnect_interval=1.0,
        log_level=logging.DEBUG,  # one line per message is noise at INFO
        # no dependency injection in handlers: it resolves context fields in a thread pool,
        # one thread hop per message (measured: the largest cost in the rules service)
        apply_types=False,
        **kwargs,
    )


async def publish_confirmed(
    broker: RabbitBroker,
    exchange: RabbitExchange,
    routing_key: str,
    body: bytes,
    *,
    message_id: str,
    headers: dict[str, Any] | None = None,
    timeout: float = 10.0,
    mandatory: bool = True,
) -> None:
    """Publish one persistent message and return only once the broker confirmed it.
    `mandatory`: an unroutable message is an error (False for exchanges nobody has to bind)."""
    try:
        confirmation = await asyncio.wait_for(
            broker.publish(
                body,
                exchange=exchange,
                routing_key=shortstr(routing_key),
                persist=True,
                mandatory=mandatory,
                message_id=shortstr(message_id),
                headers=headers,
                content_type="application/json",
            ),
            timeout,
        )
    except TimeoutError as exc:
        raise PublishTimeout(f"no confirm from the broker within {timeout:g}s") from exc
    except PublishError:
        raise
    except Exception as exc:  # connection lost, channel closed, message returned
        raise PublishError(f"{type(exc).__name__}: {exc}") from exc
    except asyncio.CancelledError as exc:
        if not cancelled_by_the_client(exc):
            raise
        raise PublishError("the channel closed before the broker confirmed") from exc
    if not isinstance(confirmation, aiormq.spec.Basic.Ack):
        raise PublishError(f"broker did not acknowledge the message: {confirmation!r}")


PIPELINE = 500  # messages awaiting their confirms at once: thousands at once outwait the timeout


async def publish_each(broker: RabbitBroker, messages: Iterable[Outgoing], *, timeout: float) -> list[PublishError | None]:
    """Publish `(exchange, routing_key, body, message_id)` tuples, confirms pipelined (up to
    PIPELINE at a time); the error of each message, or None where it was confirmed."""
    messages = list(messages)
    results: list[PublishError | BaseException | None] = []
    for start in range(0, len(messages), PIPELINE):
        results += await asyncio.gather(
            *(
                publish_confirmed(broker, ex, key, body, message_id=mid, timeout=timeout)
                for ex, key, body, mid in messages[start : start + PIPELINE]
            ),
            return_exceptions=True,
        )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, PublishError):
            raise result  # cancelled: not a publishing problem
    return [result if isinstance(result, PublishError) else None for result in results]


async def publish_all_confirmed(broker: RabbitBroker, messages: Iterable[Outgoing], *, timeout: float) -> None:
    """Publish `(exchange, routing_key, body, message_id)` tuples, confirms pipelined; raises
    PublishError unless every one was confirmed."""
    messages = list(messages)
    errors = [e for e in await publish_each(broker, messages, timeout=timeout) if e is not None]
    if errors:
        raise PublishError(f"{len(errors)} of {len(messages)} messages not confirmed: {errors[0]}")


async def connect_with_retry(broker: RabbitBroker, *, start: bool, stop_event: asyncio.Event | None = None) -> None:
    """Connect (and start subscribers) retrying forever with backoff: services come up before
    the broker in a compose stack, and must not crash-loop while it starts."""
    delay = 0.5
    while True:
        try:
            await (broker.start() if start else broker.connect())
            return
        except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
            log.warning("broker not reachable (%s); retrying in %.1fs", type(exc).__name__, delay)
            try:
                await broker.stop()
            except Exception:  # noqa: BLE001
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
