"""Silences: create, list, expire."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException

from services.common.timeutil import utcnow

from ..silences import Expire, NewSilence, SilenceStore, mute_open_alerts
from ..store import AlertStore

log = logging.getLogger("dealerwatch.notify")


def router(store: AlertStore, silences: SilenceStore) -> APIRouter:
    api = APIRouter(tags=["silences"])

    @api.post("/v1/silences", status_code=201)
    async def create_silence(body: NewSilence) -> dict[str, Any]:
        """Mute matching alerts between starts_at and ends_at: new ones are stored, marked and not
        sent; open ones are marked and get no further notifications."""
        now = utcnow()
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
