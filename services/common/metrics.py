"""Prometheus metrics (prometheus_client, the default registry of the process): every service
answers `GET /metrics` with its own (services/<service>/metrics.py), these shared ones, and the
client's process metrics. Names follow Prometheus' conventions: prefix `dealerwatch_`, base
units (`_seconds`), `_total` for counters. Reading them needs a key in production mode like any
read: a viewer or operator key, or one of DEALERWATCH_METRICS_KEYS (the scraper's own).

Labels are few and bounded (a reason is a kind, never the message: `reason_kind`)."""

from __future__ import annotations

import platform
import re
from collections.abc import Awaitable, Callable
from importlib import metadata

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Info, generate_latest

from .access import Keys
from .settings import Settings

BUILD = Info("dealerwatch_build", "The running build: version, service, Python.")
DEAD_LETTERED = Counter(
    "dealerwatch_dead_lettered_total",
    "Messages sent to the dead-letter queue, by what they were (events, signals, deliveries) and why.",
    ["queue", "reason"],
)

# the reasons a dead letter can have, by the start of its text (deadletter.py's callers)
_REASONS = (
    ("invalid", re.compile(r"^(invalid|not a valid)")),
    ("too late", re.compile(r"too late|older than")),
    ("over a limit", re.compile(r"over a limit|the limit|keeps [0-9,]+")),
    ("not published", re.compile(r"^not published")),
    ("set aside", re.compile(r"set aside")),
    ("failed", re.compile(r"^failed [0-9]+ times")),
    ("delivery failed", re.compile(r"^delivery to")),
    ("not kept", re.compile(r"^not kept")),
)


QUEUES = ("events", "signals", "deliveries")
for _queue in QUEUES:  # every series from the start: an increase over a counter that appears late misses its first
    for _kind, _ in (*_REASONS, ("other", None)):
        DEAD_LETTERED.labels(_queue, _kind)


def reason_kind(reason: str) -> str:
    for kind, pattern in _REASONS:
        if pattern.search(reason):
            return kind
    return "other"


def version() -> str:
    try:
        return metadata.version("dealerwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def install(app: FastAPI, service: str, before: Callable[[], Awaitable[None]] | None = None) -> None:
    """GET /metrics on the app, and the build info of this process; `before`: what the service
    reads when it is scraped (its database's counts)."""
    BUILD.info({"version": version(), "service": service, "python": platform.python_version()})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        if before is not None:
            await before()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def scrapers(settings: Settings) -> Keys:
    """The keys that may read /metrics besides the service's own readers."""
    return Keys(readers=[*settings.metrics_keys, *settings.viewer_keys, *settings.api_keys], writers=[])
