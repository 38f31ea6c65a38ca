"""Silences (like Alertmanager's Muter): matchers on rule, dealer, region and severity, with a
start, an end, who created it and why. Silenced alerts are stored and marked, not sent."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from services.common.alerts import Severity
from services.common.mongo import Database

from . import alert as alerts
from .matchers import Matchers
from .store import AlertStore

CACHE_SECONDS = 1.0


class SilenceMatchers(BaseModel):
    """What a silence names (the API's body); matched as `matchers.Matchers`."""

    rule_id: str | None = None
    dealer_id: str | None = None
    region: str | None = Field(default=None, description="Matches the alert's `region` label.")
    severity: Severity | None = None

    @model_validator(mode="after")
    def _not_everything(self) -> SilenceMatchers:
        if not any(getattr(self, name) for name in ("rule_id", "dealer_id", "region", "severity")):
            raise ValueError("a silence needs at least one matcher (rule_id, dealer_id, region, severity)")
        return self


class NewSilence(BaseModel):
    matchers: SilenceMatchers
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    ends_at: AwareDatetime
    created_by: str = Field(min_length=1, max_length=128)
    comment: str = Field(min_length=1, max_length=2000, description="Why.")

    @model_validator(mode="after")
    def _ends_after_start(self) -> NewSilence:
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Expire(BaseModel):
    by: str = Field(min_length=1, max_length=128, description="Who ends the silence (recorded).")


async def mute_open_alerts(store: AlertStore, silence: dict[str, Any], now: dt.datetime) -> int:
    """A silence that starts now also mutes the open alerts it matches (alert.silenced)."""
    if silence["starts_at"] > now:
        return 0
    ids = await store.ids({**alerts.active(), **Matchers.of(silence["matchers"]).query()})
    for alert_id in ids:
        condition, update = alerts.silenced(silence["silence_id"], silence["created_by"], silence["comment"], now)
        await store.change(alert_id, condition, update, "silenced", projection=alerts.PUBLIC_PROJECTION)
    return len(ids)


class SilenceStore:
    def __init__(self, db: Database):
        self._silences = db["silences"]
        self._cache: list[dict[str, Any]] = []
        self._cached_at: dt.datetime | None = None

    async def create(self, silence: NewSilence, now: dt.datetime) -> dict[str, Any]:
        doc = {
            "_id": uuid.uuid4().hex[:16],
            "matchers": silence.matchers.model_dump(),
            "starts_at": silence.starts_at or now,
            "ends_at": silence.ends_at,
            "created_by": silence.created_by,
            "comment": silence.comment,
            "created_at": now,
        }
        await self._silences.insert_one(doc)
        self.forget()
        return _view(doc)

    async def all(self, active_at: dt.datetime | None = None) -> list[dict[str, Any]]:
        query = {"starts_at": {"$lte": active_at}, "ends_at": {"$gt": active_at}} if active_at else {}
        return [_view(doc) for doc in await self._silences.find(query).sort("created_at", -1).to_list(None)]

    async def expire(self, silence_id: str, by: str, now: dt.datetime) -> dict[str, Any] | None:
        await self._silences.update_one(
            {"_id": silence_id, "ends_at": {"$gt": now}}, {"$set": {"ends_at": now, "expired_by": by}}
        )
        doc = await self._silences.find_one({"_id": silence_id})
        self.forget()
        return _view(doc) if doc else None

    async def muting(self, alert: dict[str, Any], now: dt.datetime) -> list[str]:
        """Ids of the active silences that match this alert (the list is read at most once a
        second: one query per alert was a third of the cost of storing it)."""
        if self._cached_at is None or (now - self._cached_at).total_seconds() >= CACHE_SECONDS:
            docs = await self._silences.find({"ends_at": {"$gt": now}}).to_list(None)  # current and future ones
            self._cache, self._cached_at = [_view(doc) for doc in docs], now
        return [
            s["silence_id"]
            for s in self._cache
            if s["starts_at"] <= now < s["ends_at"] and Matchers.of(s["matchers"]).matches(alert)
        ]

    def forget(self) -> None:
        self._cached_at = None


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    view = dict(doc)
    view["silence_id"] = view.pop("_id")
    return view
