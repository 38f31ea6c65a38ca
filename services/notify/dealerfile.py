"""The dealer file: visits, promotion events, sales and targets kept for each dealer (collection
`dealer_timeline`, fed by its own queue on the events exchange), with the dealer's alerts,
promotion evaluations and, from the rules service, the measures it keeps."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from urllib.parse import quote
from zoneinfo import ZoneInfo

import bson
import httpx
from bson.raw_bson import RawBSONDocument
from faststream.rabbit import RabbitBroker, RabbitMessage
from pydantic import ValidationError
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError

from services.common.broker import cancelled_by_the_client
from services.common.consuming import ack_batch, reject, subscribe
from services.common.events import parse_event
from services.common.health import Health
from services.common.settings import Settings
from services.common.topology import Topology

from .weekly import BASELINE_WEEKS, week_start, weekly_series

log = logging.getLogger("dealerwatch.notify.dealerfile")
SALES_KEPT_DAYS = 7 * (104 + BASELINE_WEEKS + 1)


def timeline_id(dealer_id: str, event_id: str) -> str:
    return f"{dealer_id}\x1f{event_id}"  # ids hold no control characters (the contract)


class DealerFile:
    def __init__(self, db, broker: RabbitBroker, settings: Settings, http: httpx.AsyncClient, health: Health):
        self._timeline = db["dealer_timeline"]
        self._health = health
        self._broker = broker
        self._settings = settings
        self._http = http
        self._topology = Topology(settings.namespace)
        self.timezone = settings.timezone
        self._pending: list[tuple[dict, RabbitMessage]] = []
        self._wanted = asyncio.Event()
        subscribe(broker, self._topology.dealer_file_queue, self.on_event, prefetch=settings.prefetch, title="notify: dealer file")

    async def ensure_indexes(self) -> None:
        await self._timeline.create_index([("dealer_id", ASCENDING), ("occurred_at", DESCENDING)])
        # sales only serve the weekly chart: kept for its longest view (104 weeks) and baseline
        await self._timeline.create_index([("occurred_at", ASCENDING)], name="sales_kept", expireAfterSeconds=SALES_KEPT_DAYS * 86400,
                                          partialFilterExpression={"type": "sale"})

    async def on_event(self, body: bytes) -> None:
        message: RabbitMessage = self._broker.context.get_local("message")
        try:
            event = parse_event(body)
        except ValidationError as exc:
            await reject(self._broker, self._topology, message, f"invalid event: {exc.errors(include_url=False)[:3]}", stage="notify")
            return
        if event.type == "sale":  # many: only what the weekly chart needs
            document = {"type": "sale", "dealer_id": event.dealer_id, "amount": float(event.amount)}
        else:
            document = event.model_dump(mode="json")
        # an event id is unique per dealer (rules counts it per dealer): two dealers' events may share one
        document.update(_id=timeline_id(event.dealer_id, event.event_id), occurred_at=event.occurred_at)
        self._pending.append((document, message))
        self._wanted.set()

    async def run(self) -> None:
        """Write what arrived in one insert_many, then ack it with one frame (like rules). A
        document the database cannot take is dead-lettered with the reason and the rest of its
        batch written; only an unreachable database holds the batch (retried, nothing acked)."""
        while True:
            await self._wanted.wait()
            await asyncio.sleep(0.02)  # let a batch gather
            self._wanted.clear()
            batch, self._pending = self._pending, []
            try:
                refused = await self._write([doc for doc, _ in batch])
            except Exception as exc:  # noqa: BLE001 - database away: retry, nothing acked
                self._health.failed("dealer file", exc)
                log.error("keeping the dealer file failed (%s); retrying", exc)
                self._pending[:0] = batch
                self._wanted.set()
                await asyncio.sleep(1.0)
                continue
            self._health.ok("dealer file")
            try:
                for index, reason in refused.items():
                    await reject(self._broker, self._topology, batch[index][1], f"not kept in the dealer file: {reason}", stage="notify")
            except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - broker away: redelivered, stored again
                if not isinstance(exc, Exception) and not cancelled_by_the_client(exc):
                    raise
                log.warning("dead-lettering failed (%s); the batch will be redelivered", exc)
                continue
            await ack_batch([message for index, (_, message) in enumerate(batch) if index not in refused])

    async def _write(self, docs: list[dict]) -> dict[int, str]:
        """Insert the documents; {index: reason} of those that cannot be stored (already
        stored ones, from a retried event, are fine)."""
        refused, encoded, positions = {}, [], []
        for index, doc in enumerate(docs):
            try:
                encoded.append(RawBSONDocument(bson.encode(doc)))
                positions.append(index)
            except Exception as exc:  # noqa: BLE001 - e.g. an integer beyond 64 bits
                refused[index] = f"{type(exc).__name__}: {exc}"
        if not encoded:
            return refused
        try:
            await self._timeline.insert_many(encoded, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors:
                raise
            for error in errors:
                if error.get("code") != 11000:  # not a duplicate: this document is refused
                    refused[positions[error["index"]]] = str(error.get("errmsg"))
        return refused

    async def timeline(self, dealer_id: str, kinds: list[str], limit: int = 200) -> list[dict]:
        cursor = self._timeline.find({"dealer_id": dealer_id, "type": {"$in": kinds}}, {"_id": 0})
        return await cursor.sort("occurred_at", DESCENDING).limit(limit).to_list(None)

    async def weekly_sales(self, dealer_id: str, weeks: int, until: dt.datetime) -> list[dict]:
        zone = ZoneInfo(self.timezone)
        since = dt.datetime.combine(week_start(until, zone) - dt.timedelta(weeks=weeks + BASELINE_WEEKS), dt.time(), zone)
        sales = await self._timeline.find(
            {"dealer_id": dealer_id, "type": "sale", "occurred_at": {"$gte": since}}, {"_id": 0, "occurred_at": 1, "amount": 1}
        ).to_list(None)
        targets: dict[str, float] = {}
        async for doc in self._timeline.find({"dealer_id": dealer_id, "type": "target.set"}).sort("occurred_at", ASCENDING):
            targets[doc["period"]] = float(doc["sales_target"])  # the latest setting of a month wins
        return weekly_series([(s["occurred_at"], s["amount"]) for s in sales], targets, until, weeks, zone)

    async def rules_view(self, dealer_id: str) -> tuple[dict | None, str | None]:
        """(what the rules service keeps for the dealer, or None with the reason)."""
        url = f"{self._settings.rules_url.rstrip('/')}/v1/dealers/{quote(dealer_id, safe='')}"
        keys = self._settings.viewer_keys or self._settings.api_keys  # rules takes notify's keys for reading
        headers = {"Authorization": f"Bearer {keys[0].get_secret_value()}"} if keys else {}
        try:
            response = await self._http.get(url, timeout=3.0, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"rules service unreachable: {type(exc).__name__}"
        if response.status_code == 404:
            return None, "the rules service has no state for this dealer"
        if response.status_code != 200:
            return None, f"rules service answered {response.status_code}"
        return response.json(), None

