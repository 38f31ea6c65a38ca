"""The rules service process: RulesService plus a small HTTP app for health checks."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.common.settings import Settings

from . import policy as policies
from .service import RulesService


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = RulesService(settings, policies.load(settings.policy_file))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        yield
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

    return app
