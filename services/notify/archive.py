"""Keeps every accepted event in the archive (common/archive.py): from its own queue on the
events exchange, written in batches (one insert_many, then one ack frame), like the dealer file."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faststream.rabbit import RabbitBroker, RabbitMessage
from pydantic import ValidationError

from services.common import archive
from services.common.batching import flush_forever
from services.common.consuming import ack_batch, reject, subscribe
from services.common.events import parse_event
from services.common.health import Health
from services.common.mongo import Database, insert_new
from services.common.settings import Settings
from services.common.topology import Topology

log = logging.getLogger("dealerwatch.notify.archive")


class EventArchive:
    def __init__(self, db: Database, broker: RabbitBroker, settings: Settings, health: Health):
        self._events = db[archive.COLLECTION]
        self._db, self._days = db, settings.archive_days
        self._broker, self._health = broker, health
        self._topology = Topology(settings.namespace, settings.partitions)
        self._pending: list[tuple[dict[str, Any], RabbitMessage]] = []
        self._wanted = asyncio.Event()
        subscribe(broker, self._topology.archive_queue, self.on_event, prefetch=settings.prefetch, title="notify: events archive")

    async def ensure_indexes(self) -> None:
        await archive.ensure_indexes(self._db, self._days)

    def holding(self) -> bool:
        return bool(self._pending)

    async def on_event(self, body: bytes) -> None:
        message: RabbitMessage = self._broker.context.get_local("message")
        try:
            event = parse_event(body)
        except ValidationError as exc:
            await reject(
                self._broker,
                self._topology,
                message,
                f"invalid event: {exc.errors(include_url=False)[:3]}",
                stage="notify.archive",
            )
            return
        self._pending.append((archive.document(event), message))
        self._wanted.set()

    async def run(self) -> None:
        await flush_forever(self._wanted, self._flush, name="events archive", health=self._health, log=log, gather_seconds=0.02)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            refused = await insert_new(self._events, [doc for doc, _ in batch])
            for index, reason in refused.items():
                await reject(self._broker, self._topology, batch[index][1], f"not archived: {reason}", stage="notify.archive")
        except BaseException:
            self._pending[:0] = batch  # written again (duplicates are fine)
            raise
        await ack_batch([message for index, (_, message) in enumerate(batch) if index not in refused])
