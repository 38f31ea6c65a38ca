"""settle(): an ack or nack that fails or hangs is logged and left to redelivery, never raised
into the consumer (a broker restart leaves channels whose operations fail or never return); a
cancellation of the consumer's own task still stops it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiormq
import pytest

from services.common import consuming

MESSAGE = SimpleNamespace(message_id="m-1")


async def test_an_ack_on_a_closed_channel_is_left_to_redelivery(caplog):
    async def closed() -> None:
        raise aiormq.exceptions.ChannelInvalidStateError("the channel is closed")

    await consuming.settle(closed(), MESSAGE, "ack")
    assert "could not ack message m-1" in caplog.text and "redelivered" in caplog.text


async def test_an_operation_the_closing_channel_cancels_is_left_to_redelivery(caplog):
    async def cancelled_by_the_channel() -> None:
        raise asyncio.CancelledError("channel closed")  # aiormq fails pending operations so

    await consuming.settle(cancelled_by_the_channel(), MESSAGE, "nack")
    assert "could not nack message m-1" in caplog.text


async def test_an_ack_that_never_returns_gives_up_after_its_time(monkeypatch, caplog):
    monkeypatch.setattr(consuming, "SETTLE_SECONDS", 0.05)
    await asyncio.wait_for(consuming.settle(asyncio.Event().wait(), MESSAGE, "ack"), 5)
    assert "TimeoutError" in caplog.text


async def test_the_consumer_being_stopped_is_not_swallowed():
    started = asyncio.Event()

    async def consumer() -> None:
        async def slow() -> None:
            started.set()
            await asyncio.sleep(10)

        await consuming.settle(slow(), MESSAGE, "ack")

    task = asyncio.create_task(consumer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
