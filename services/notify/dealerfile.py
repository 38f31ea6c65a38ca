"""The dealer file: visits and promotion events kept for each dealer (collection
`dealer_timeline`, fed by its own queue on the events exchange), with the dealer's alerts,
promotion evaluations and, from the rules service, the measures it keeps."""

from __future__ import annotations

import logging

import httpx
from faststream.rabbit import RabbitBroker, RabbitMessage
from pydantic import ValidationError
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from services.common.consuming import reject, retry_or_reject, subscribe
from services.common.events import parse_event
from services.common.settings import Settings
from services.common.topology import Topology

log = logging.getLogger("dealerwatch.notify.dealerfile")


class DealerFile:
    def __init__(self, db, broker: RabbitBroker, settings: Settings, http: httpx.AsyncClient):
        self._timeline = db["dealer_timeline"]
        self._broker = broker
        self._settings = settings
        self._http = http
        self._topology = Topology(settings.namespace)
        subscribe(broker, self._topology.dealer_file_queue, self.on_event, prefetch=settings.prefetch, title="notify: dealer file")

    async def ensure_indexes(self) -> None:
        await self._timeline.create_index([("dealer_id", ASCENDING), ("occurred_at", DESCENDING)])

    async def on_event(self, body: bytes) -> None:
        message: RabbitMessage = self._broker.context.get_local("message")
        try:
            event = parse_event(body)
        except ValidationError as exc:
            await reject(self._broker, self._topology, message, f"invalid event: {exc.errors(include_url=False)[:3]}", stage="notify")
            return
        try:
            document = event.model_dump(mode="json")
            document.update(_id=event.event_id, occurred_at=event.occurred_at)
            await self._timeline.insert_one(document)
        except DuplicateKeyError:
            pass  # a retried event: already in the file
        except Exception as exc:  # noqa: BLE001
            await retry_or_reject(self._broker, self._topology, message, exc, max_attempts=self._settings.max_attempts, stage="notify")
            return
        await message.ack()

    async def timeline(self, dealer_id: str, kinds: list[str], limit: int = 200) -> list[dict]:
        cursor = self._timeline.find({"dealer_id": dealer_id, "type": {"$in": kinds}}, {"_id": 0})
        return await cursor.sort("occurred_at", DESCENDING).limit(limit).to_list(None)

    async def rules_view(self, dealer_id: str) -> tuple[dict | None, str | None]:
        """(what the rules service keeps for the dealer, or None with the reason)."""
        url = f"{self._settings.rules_url.rstrip('/')}/v1/dealers/{dealer_id}"
        try:
            response = await self._http.get(url, timeout=3.0)
        except httpx.HTTPError as exc:
            return None, f"rules service unreachable: {type(exc).__name__}"
        if response.status_code == 404:
            return None, "the rules service has no state for this dealer"
        if response.status_code != 200:
            return None, f"rules service answered {response.status_code}"
        return response.json(), None
