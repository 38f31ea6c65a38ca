"""Silences: create, list, expire."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from fastapi import APIRouter, HTTPException

from services.common.timeutil import utcnow

from ..silences import Expire, NewSilence, SilenceStore, mute_open_alerts
from ..store import AlertStore

log = logging.getLogger("dealerwatch.notify")


def router(store: AlertStore, silences: SilenceStore, max_days: float) -> APIRouter:
    api = APIRouter(tags=["silences"])

    @api.post("/v1/silences", status_code=201)
    async def create_silence(body: NewSilence) -> dict[str, Any]:
        """Mute matching alerts between starts_at and ends_at: new ones are stored, marked and not
        sent; open ones are marked and get no further notifications. A silence lasts at most
        DEALERWATCH_SILENCE_MAX_DAYS (30 days unless set): a longer one would hide a dealer for good."""
        now = utcnow()
        if body.ends_at - (body.starts_at or now) > dt.timedelta(days=max_days):
            raise HTTPException(422, f"a silence lasts at most {max_days:g} days (DEALERWATCH_SILENCE_MAX_DAYS); end it sooner")
        silence = await silences.create(body, now)
        muted = await mute_open_alerts(store, silence, now)
        log.info("silence %s by %s (%d open alerts): %s", silence["silence_id"], body.created_by, muted, body.comment)
        return {**silence, "open_alerts_silenced": muted}

    @api.get("/v1/silences")
    async def list_silences(active: bool = False) -> dict[str, Any]:
        return {"items": await silences.all(utcnow() if active else None)}

    @api.post("/v1/silences/{silence_id}/expire")
    async def expire_silence(silence_id: str, body: Expire) -> dict[str, Any]:
        silence = await silences.expire(silence_id, body.by, utcnow())
        if silence is None:
            raise HTTPException(404, f"no silence {silence_id!r}")
        return silence

    return api
