"""RabbitMQ connection and durable publishing, shared by the three services.

FastStream's defaults lose messages (non-persistent publishing, returned
messages ignored, unlimited prefetch); everything here turns those off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from weakref import WeakKeyDictionary

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


_nodes: WeakKeyDictionary[RabbitBroker, list[str]] = WeakKeyDictionary()  # broker -> its cluster's URLs


def make_broker(settings: Settings, **kwargs: Any) -> RabbitBroker:
    urls = settings.amqp_urls()
    broker = RabbitBroker(
        urls[0],
        default_channel=Channel(prefetch_count=settings.prefetch, publisher_confirms=True, on_return_raises=True),
        reconnect_interval=1.0,
        log_level=logging.DEBUG,  # one line per message is noise at INFO
        # no dependency injection in handlers: it resolves context fields in a thread pool,
        # one thread hop per message (measured: the largest cost in the rules service)
        apply_types=False,
        **kwargs,
    )
    _nodes[broker] = urls
    return broker


def _next_node(broker: RabbitBroker) -> None:
    """The next URL of the cluster for the broker's next connection. aio-pika's connection
    reconnects to the one URL it was given; FastStream keeps that URL in `_connection_kwargs`."""
    urls = _nodes.get(broker, [])
    if len(urls) > 1:
        current = broker._connection_kwargs.get("url")
        following = urls[(urls.index(current) + 1) % len(urls)] if current in urls else urls[0]
        broker._connection_kwargs["url"] = following


NODE_DOWN_SECONDS = 3.0  # disconnected this long: move to another node of the cluster


async def follow_nodes(broker: RabbitBroker, *, start: bool, reconnected: Callable[[], Awaitable[None]]) -> None:
    """With several nodes: when the broker's connection has been down for NODE_DOWN_SECONDS,
    connect to the next node (aio-pika would keep trying the node that went away) and call
    `reconnected` (declare the topology again)."""
    if len(_nodes.get(broker, [])) < 2:
        return
    down_since: float | None = None
    while True:
        await asyncio.sleep(0.5)
        connection = broker._connection
        if connection is None or connection.connected.is_set():
            down_since = None
            continue
        down_since = down_since or time.monotonic()
        if time.monotonic() - down_since < NODE_DOWN_SECONDS:
            continue
        log.warning("the broker node has been away for %.0fs: connecting to another node", NODE_DOWN_SECONDS)
        try:
            await broker.stop()
        except Exception:  # noqa: BLE001 - closing what is already gone
            pass
        _next_node(broker)
        await connect_with_retry(broker, start=start)
        await reconnected()
        down_since = None


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


async def publish_each(
    broker: RabbitBroker, messages: Iterable[Outgoing], *, timeout: float, mandatory: bool = True
) -> list[PublishError | None]:
    """Publish `(exchange, routing_key, body, message_id)` tuples, confirms pipelined (up to
    PIPELINE at a time); the error of each message, or None where it was confirmed."""
    messages = list(messages)
    results: list[PublishError | BaseException | None] = []
    for start in range(0, len(messages), PIPELINE):
        results += await asyncio.gather(
            *(
                publish_confirmed(broker, ex, key, body, message_id=mid, timeout=timeout, mandatory=mandatory)
                for ex, key, body, mid in messages[start : start + PIPELINE]
            ),
            return_exceptions=True,
        )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, PublishError):
            raise result  # cancelled: not a publishing problem
    return [result if isinstance(result, PublishError) else None for result in results]


async def publish_all_confirmed(
    broker: RabbitBroker, messages: Iterable[Outgoing], *, timeout: float, mandatory: bool = True
) -> None:
    """Publish `(exchange, routing_key, body, message_id)` tuples, confirms pipelined; raises
    PublishError unless every one was confirmed."""
    messages = list(messages)
    errors = [e for e in await publish_each(broker, messages, timeout=timeout, mandatory=mandatory) if e is not None]
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
            _next_node(broker)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
