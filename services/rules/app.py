"""The rules service process: RulesService plus a small HTTP app (health, policy reload)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse

from services.common.auth import bearer_ok, key_bytes
from services.common.settings import Settings

from . import policy as policies
from .reload import PolicyReloader
from .service import RulesService

log = logging.getLogger("dealerwatch.rules")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = RulesService(settings, policies.load(settings.policy_file))
    reloader = PolicyReloader(settings.policy_file, service, settings.policy_poll_seconds)
    admin_keys = key_bytes(settings.admin_keys)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if not admin_keys:
            log.warning("DEALERWATCH_ADMIN_KEYS is not set: POST /admin/reload is open (development mode)")
        await service.start()
        reloader.install_signal()
        watcher = asyncio.create_task(reloader.watch())
        yield
        watcher.cancel()
        await service.stop()

    app = FastAPI(title="dealerwatch rules", version="1", lifespan=lifespan)
    app.state.service = service

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        broker_up = service.ready and await service.broker.ping(timeout=0.05)
        database_up = await service.store.ping()
        ready = broker_up and database_up
        body = {
            "ready": ready,
            "broker": broker_up,
            "database": database_up,
            "policy_version": service.core.policy.version,
            "dealers": len(service.core.states),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.post("/admin/reload")
    async def reload(authorization: str = Header(default="")) -> JSONResponse:
        if not bearer_ok(authorization, admin_keys):
            raise HTTPException(401, "missing or invalid admin key", headers={"WWW-Authenticate": "Bearer"})
        result = reloader.reload("admin endpoint")
        return JSONResponse(result, status_code=200 if not result["errors"] else 422)

    return app
