"""The rules service process: RulesService plus a small HTTP app (health, policy reload)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from services.common import metrics as common_metrics
from services.common.access import AccessMiddleware, Keys, refuse_open_bind
from services.common.dealer_file import DealerFileView, PolicyView
from services.common.health import readiness
from services.common.logs import dump_tasks_on_signal
from services.common.settings import Settings
from services.common.yamlsource import FileError

from . import incentives, metrics
from . import policy as policies
from .policy_history import PolicyHistory
from .reload import PolicyReloader
from .service import RulesService
from .spec import DealerFileSpec
from .state import utc
from .store import stored_policy
from .toolbox.describe import rule_view

log = logging.getLogger("dealerwatch.rules")


def initial_policy(settings: Settings) -> tuple[policies.Policy, list[str]]:
    """The policy file, or, if it is invalid, the last good policy (with the file's errors): a
    bad edit must not keep the service from starting again and again."""
    try:
        return policies.load(settings.policy_file), []
    except FileError as exc:
        stored = stored_policy(settings)
        if stored is None:
            raise
        log.error("the policy file is invalid; running the last good policy %s:\n%s", stored["version"], exc)
        return policies.loads(stored["text"], source=f"{settings.policy_file} (last good, {stored['version']})"), exc.lines()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    policy, file_errors = initial_policy(settings)
    service = RulesService(settings, policy)
    service.policy_file_errors = file_errors
    history = PolicyHistory(service.store.db)
    reloader = PolicyReloader(settings.policy_file, service, settings.files_poll_seconds, history)
    # reading what rules keeps: notify's viewer and operator keys; reloading: admin keys
    keys = Keys(readers=settings.viewer_keys + settings.api_keys, writers=settings.admin_keys)
    refuse_open_bind("rules", settings.rules_host, keys, "DEALERWATCH_ADMIN_KEYS")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if keys.open:
            log.warning("no DEALERWATCH_ADMIN_KEYS: the rules service is open (development mode, loopback only)")
        await service.start()
        reloader.install_signal()
        dump_tasks_on_signal(service.consumer_state)
        watcher = asyncio.create_task(reloader.watch())
        collector = metrics.register(service)
        depths = asyncio.create_task(metrics.watch_queues(service))
        yield
        watcher.cancel()
        depths.cancel()
        await history.close()
        REGISTRY.unregister(collector)
        await service.stop()

    app = FastAPI(title="dealerwatch rules", version="1", lifespan=lifespan)
    app.state.service = service

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready: connected, and no loop stuck (a flush failing, the clock stopped); the details
        with a reading key."""
        broker_up = service.ready and await service.broker.ping(timeout=0.05)
        database_up = await service.store.ping()
        problems = service.health.problems()
        ready = broker_up and database_up and not problems
        body = {
            "broker": broker_up,
            "database": database_up,
            "problems": problems,
            "policy_version": service.core.policy.version,
            "policy_file_errors": service.policy_file_errors,  # the file is invalid: the last good policy runs
            "dealers": len(service.core.states),
            "dealers_set_aside": len(service.set_aside()),
            # this worker's share: the partitions it owns (GET /partitions has their lag and epochs)
            "partitions": sorted(service.partitions),
            "workers": service.ownership.live,
        }
        return readiness(ready, body, keys.allows(request.headers.get("authorization", ""), write=False))

    @app.get("/clock")
    async def clock() -> dict[str, Any]:
        """Where the live clock stands: time judged up to, dealers held for their history."""
        view = service.clock_view()
        history = {source: _iso(newest) for source, newest in view["history"].items()}
        return {
            **view,
            "judged_until": _iso(view["judged_until"]),
            "next_hold_end": _iso(view["next_hold_end"]),
            "history": history,
        }

    @app.get("/v1/policy")
    async def policy_view() -> PolicyView:
        """What other services take from the running policy (the board's dealer file)."""
        running = service.core.policy
        spec = running.spec.dealer_file or DealerFileSpec()
        dealer_file = DealerFileView(baseline_weeks=running.baseline_weeks, drop_below=spec.drop_below)
        return PolicyView(version=running.version, timezone=running.spec.timezone, dealer_file=dealer_file)

    @app.get("/partitions")
    async def partitions() -> dict[str, Any]:
        """The partitions this worker owns: epoch, lag (messages waiting), dealers."""
        return {
            "worker": service.worker_id,
            "partitions_total": service.settings.partitions,
            "workers": service.ownership.live,
            "share": service.ownership.target,
            "owned": [{**item, "taken_at": _iso(item["taken_at"])} for item in await service.partitions_view()],
        }

    @app.get("/v1/set-aside")
    async def set_aside() -> dict[str, Any]:
        """Dealers whose judgement failed: left as they were, skipped by the clock until a
        policy reload or a restart (or their next event), with the reason."""
        items = [{"dealer_id": a.dealer_id, "at": _iso(a.at), "reason": a.reason} for a in service.set_aside()]
        return {"items": items}

    @app.get("/v1/dealers/{dealer_id}")
    async def dealer(dealer_id: str) -> dict[str, Any]:
        """What the rules keep for a dealer: current measures, promotions, open episodes."""
        # another worker may own the dealer: then its stored state (as of that worker's last flush)
        state = service.core.states.get(dealer_id) or await service.store.load(dealer_id)
        if state is None:
            raise HTTPException(404, f"no state for dealer {dealer_id!r}")
        t = max(time.time(), state.latest or 0.0)
        policy = service.core.policy
        return {
            "dealer_id": dealer_id,
            "at": _iso(t),
            "policy_version": service.core.policy.version,
            "first_seen": _iso(state.first_seen),
            "judged_until": _iso(state.latest),
            "events_counted": state.events,
            "held_until": _iso(state.hold.until) if state.hold else None,
            "measures": service.core.measures_of(state, t),
            "promotions": [
                {
                    "promotion_id": pid,
                    "budget": p.budget,
                    "owner": p.owner,
                    "starts_on": p.starts_on,
                    "ends_on": p.ends_on,
                    "approved_by": p.approved_by,
                    "approved_at": _iso(p.approved_at),
                    "spend": p.spend,
                    "ended_at": _iso(p.ended_at),
                }
                for pid, p in state.promotions.items()
            ],
            "open_episodes": [
                {"key": key, "alert_id": e.alert_id, "opened_at": _iso(e.opened_at)} for key, e in state.episodes.items()
            ],
            "incentives": incentives.view(state, policy.spec.incentives, t, policy.calendar),
        }

    @app.get("/v1/policy/live")
    async def live_policy() -> dict[str, Any]:
        """The running policy for people (the board's policy view): its rules, version, when it
        was loaded, the reload history and the diff of the last change on the archive."""
        running = service.core.policy
        return {
            "version": running.version,
            "source": running.source,
            "timezone": running.spec.timezone,
            "rules": [rule_view(rule) for rule in running.rules],
            **await history.view(),
        }

    @app.post("/admin/reload")
    async def reload(request: Request, dry_run: bool = False) -> JSONResponse:
        """Reload the policy file (an admin key in production mode). dry_run=true: the posted
        policy (or, with no body, the file) against the live one on the archive's last 90 days,
        the diff `dealerwatch policy diff` prints as JSON; nothing is switched."""
        if not dry_run:
            result = reloader.reload("admin endpoint")
            return JSONResponse(result, status_code=200 if not result["errors"] else 422)
        body = await request.body()
        try:
            text = body.decode("utf-8") if body else Path(settings.policy_file).read_text(encoding="utf-8")
            policies.loads(text, source="posted policy")
        except UnicodeDecodeError:
            return JSONResponse({"dry_run": True, "errors": ["the policy is not UTF-8 text"]}, status_code=422)
        except FileError as exc:
            return JSONResponse({"dry_run": True, "errors": exc.lines()}, status_code=422)
        found = await history.diff(service.core.policy.text, text)
        return JSONResponse({"dry_run": True, "reloaded": False, "version": service.core.policy.version, "diff": found})

    common_metrics.install(app, "rules")
    public = ("/healthz", "/readyz", "/docs", "/openapi.json")
    scrapers = common_metrics.scrapers(settings)
    app.add_middleware(AccessMiddleware, keys=keys, public=public, max_body=64 * 1024, scrapers=scrapers)
    return app


def _iso(moment: float | None) -> str | None:
    return None if moment is None else utc(moment).isoformat()
