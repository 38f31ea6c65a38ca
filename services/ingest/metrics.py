"""Ingest's metrics: events accepted, requests refused by reason, the time a request and its
publishing take. Refusals the access check makes before the app sees the request (no key: 401
or 403; too large: 413) are counted by `CountRefusals` in front of it."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EVENTS_ACCEPTED = Counter("dealerwatch_ingest_events_accepted_total", "Events accepted (202: confirmed by the broker).")
REQUESTS_REFUSED = Counter(
    "dealerwatch_ingest_requests_refused_total",
    "POST /v1/events refused, by reason: invalid, too late, over a limit, unauthorized, too large, unavailable.",
    ["reason"],
)
EVENTS_REFUSED = Counter(
    "dealerwatch_ingest_events_refused_total", "Events of refused requests whose reason names them, by reason.", ["reason"]
)
REQUEST_SECONDS = Histogram("dealerwatch_ingest_request_seconds", "POST /v1/events, from the request to the answer.")
PUBLISH_SECONDS = Histogram(
    "dealerwatch_ingest_publish_seconds", "Publishing a request's events until the broker confirmed them."
)
REASONS = ("invalid", "too late", "over a limit", "unauthorized", "too large", "unavailable")
for _reason in REASONS:  # every series from the start: a rate over a counter that appears late misses its first
    REQUESTS_REFUSED.labels(_reason)


def refused(reason: str, events: int = 0) -> None:
    REQUESTS_REFUSED.labels(reason).inc()
    if events:
        EVENTS_REFUSED.labels(reason).inc(events)


class CountRefusals:
    """Outermost: the refusals of the access check (401, 403, 413) on POST /v1/events."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/events" or scope["method"] != "POST":
            return await self.app(scope, receive, send)

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403, 413):
                refused("too large" if message["status"] == 413 else "unauthorized")
            await send(message)

        with REQUEST_SECONDS.time():
            await self.app(scope, receive, watched)
