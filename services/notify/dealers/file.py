"""The dealer file: visits, promotion events, sales and targets kept for each dealer (collection
`dealer_timeline`, fed by its own queue on the events exchange), with the dealer's alerts,
promotion evaluations and, from the rules service, the measures it keeps."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
from faststream.rabbit import RabbitBroker, RabbitMessage
from pydantic import ValidationError
from pymongo import ASCENDING, DESCENDING

from services.common.alerts import SEVERITY_RANK
from services.common.batching import flush_forever
from services.common.consuming import ack_batch, reject, subscribe
from services.common.dealer_file import PolicyView
from services.common.durations import DAY
from services.common.events import parse_event
from services.common.health import Health
from services.common.mongo import Collection, Database, insert_new, timeline_id
from services.common.settings import Settings
from services.common.topology import Topology

from .. import alert as alerts
from ..store import AlertStore
from .weekly import KEPT_WEEKS, week_start, weekly_series

log = logging.getLogger("dealerwatch.notify.dealerfile")
SALES_KEPT_DAYS = 7 * KEPT_WEEKS
POLICY_KEPT_SECONDS = 60.0


async def dealers_with_open_alerts(store: AlertStore) -> list[dict[str, Any]]:
    """Dealers with open or acknowledged alerts: how many, the highest severity, since when."""
    pipeline = [
        {"$match": alerts.active()},
        {
            "$group": {
                "_id": "$dealer_id",
                "open_alerts": {"$sum": 1},
                "severity_rank": {"$max": "$severity_rank"},
                "oldest_open_since": {"$min": "$first_seen_at"},
            }
        },
    ]
    severities = {rank: name for name, rank in SEVERITY_RANK.items()}
    return [
        {
            "dealer_id": row["_id"],
            "open_alerts": row["open_alerts"],
            "highest_severity": severities[row["severity_rank"]],
            "oldest_open_since": row["oldest_open_since"],
        }
        for row in await store.aggregate(pipeline)
    ]


class DealerFile:
    def __init__(self, db: Database, broker: RabbitBroker, settings: Settings, http: httpx.AsyncClient, health: Health):
        self._timeline = db["dealer_timeline"]
        self._health = health
        self._broker = broker
        self._settings = settings
        self._http = http
        self._topology = Topology(settings.namespace, settings.partitions)
        self._policy: tuple[float, PolicyView] | None = None  # (when, what rules said)
        self._pending: list[tuple[dict[str, Any], RabbitMessage]] = []
        self._wanted = asyncio.Event()
        subscribe(
            broker, self._topology.dealer_file_queue, self.on_event, prefetch=settings.prefetch, title="notify: dealer file"
        )

    @property
    def collection(self) -> Collection:
        """The timeline itself, for the read models built on it (network.py)."""
        return self._timeline

    async def ensure_indexes(self) -> None:
        await self._timeline.create_index([("dealer_id", ASCENDING), ("occurred_at", DESCENDING)])
        await self._timeline.create_index([("type", ASCENDING), ("planned_for", ASCENDING)], name="plans_by_day")
        # sales only serve the weekly chart: kept for its longest view and baseline
        await self._timeline.create_index(
            [("occurred_at", ASCENDING)],
            name="sales_kept",
            expireAfterSeconds=int(SALES_KEPT_DAYS * DAY),
            partialFilterExpression={"type": "sale"},
        )

    def holding(self) -> bool:
        """Deliveries received and not yet settled."""
        return bool(self._pending)

    async def on_event(self, body: bytes) -> None:
        message: RabbitMessage = self._broker.context.get_local("message")
        try:
            event = parse_event(body)
        except ValidationError as exc:
            await reject(
                self._broker, self._topology, message, f"invalid event: {exc.errors(include_url=False)[:3]}", stage="notify"
            )
            return
        if event.type == "sale":  # many: only what the weekly chart and the outlet files need
            document = {"type": "sale", "dealer_id": event.dealer_id, "amount": float(event.amount)}
            if event.outlet_id is not None:
                document.update(outlet_id=event.outlet_id, quantity=event.quantity)
        else:
            document = event.model_dump(mode="json")
        # an event id is unique per dealer (rules counts it per dealer): two dealers' events may share one
        document.update(_id=timeline_id(event.dealer_id, event.event_id), occurred_at=event.occurred_at)
        self._pending.append((document, message))
        self._wanted.set()

    async def run(self) -> None:
        """Write what arrived in one insert_many, then ack it with one frame (like rules)."""
        await flush_forever(self._wanted, self._flush, name="dealer file", health=self._health, log=log, gather_seconds=0.02)

    async def _flush(self) -> None:
        """A document the database cannot take is dead-lettered with the reason and the rest of
        its batch written; only an unreachable database holds the batch (put back, retried)."""
        batch, self._pending = self._pending, []
        try:
            refused = await insert_new(self._timeline, [doc for doc, _ in batch])
            for index, reason in refused.items():
                await reject(
                    self._broker, self._topology, batch[index][1], f"not kept in the dealer file: {reason}", stage="notify"
                )
        except BaseException:
            self._pending[:0] = batch  # written again (duplicates are fine), dead-lettered again
            raise
        await ack_batch([message for index, (_, message) in enumerate(batch) if index not in refused])

    async def timeline(self, dealer_id: str, kinds: list[str], limit: int = 200) -> list[dict[str, Any]]:
        cursor = self._timeline.find({"dealer_id": dealer_id, "type": {"$in": kinds}}, {"_id": 0})
        return await cursor.sort("occurred_at", DESCENDING).limit(limit).to_list(None)

    async def weekly_sales(self, dealer_id: str, weeks: int, until: dt.datetime, policy: PolicyView) -> list[dict[str, Any]]:
        """The chart's series, with the running policy's time zone and baseline (policy_view)."""
        zone, baseline_weeks = ZoneInfo(policy.timezone), policy.dealer_file.baseline_weeks
        since = dt.datetime.combine(week_start(until, zone) - dt.timedelta(weeks=weeks + baseline_weeks), dt.time(), zone)
        sales = await self._timeline.find(
            {"dealer_id": dealer_id, "type": "sale", "occurred_at": {"$gte": since}}, {"_id": 0, "occurred_at": 1, "amount": 1}
        ).to_list(None)
        targets: dict[str, float] = {}
        async for doc in self._timeline.find({"dealer_id": dealer_id, "type": "target.set"}).sort("occurred_at", ASCENDING):
            targets[doc["period"]] = float(doc["sales_target"])  # the latest setting of a month wins
        return weekly_series([(s["occurred_at"], s["amount"]) for s in sales], targets, until, weeks, zone, baseline_weeks)

    async def rules_view(self, dealer_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """(what the rules service keeps for the dealer, or None with the reason)."""
        return await self.ask_rules(f"/v1/dealers/{quote(dealer_id, safe='')}", "the rules service has no state for this dealer")

    async def policy_view(self) -> tuple[PolicyView | None, str | None]:
        """(the running policy's time zone and dealer-file parameters, or None with the reason):
        asked from rules, so that the chart follows the policy and restates nothing; the last
        answer is kept for a minute."""
        if self._policy is not None and time.monotonic() - self._policy[0] < POLICY_KEPT_SECONDS:
            return self._policy[1], None
        answer, error = await self.ask_rules("/v1/policy", "the rules service has no policy")
        if answer is not None:
            try:
                self._policy = (time.monotonic(), PolicyView.model_validate(answer))
                return self._policy[1], None
            except ValidationError as exc:
                error = f"the rules service's policy view is not understood: {exc.error_count()} errors"
        if self._policy is not None:
            return self._policy[1], None  # rules away: the last policy it named
        return None, error

    async def ask_rules(self, path: str, not_found: str) -> tuple[dict[str, Any] | None, str | None]:
        url = f"{self._settings.rules_url.rstrip('/')}{path}"
        keys = self._settings.viewer_keys or self._settings.api_keys  # rules takes notify's keys for reading
        headers = {"Authorization": f"Bearer {keys[0].get_secret_value()}"} if keys else {}
        try:
            response = await self._http.get(url, timeout=3.0, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"rules service unreachable: {type(exc).__name__}"
        if response.status_code == 404:
            return None, not_found
        if response.status_code != 200:
            return None, f"rules service answered {response.status_code}"
        return response.json(), None
