"""The one interface every channel implements (like Alertmanager's `Notifier.Notify`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx


class DeliveryFailed(Exception):
    """The receiver did not take the notification; the reason is kept in the delivery log."""


class Channel(Protocol):
    name: str

    def target(self) -> str:
        """Where it goes, safe to show (no tokens or passwords)."""

    async def send(self, alerts: list[dict[str, Any]]) -> None:
        """Deliver one message about these alerts (one, or a group) or raise DeliveryFailed.
        Each alert carries `notification`: firing, resolved, repeat or escalation."""


@dataclass(frozen=True)
class Context:
    """What building a channel may use besides its receiver's configuration."""

    http: httpx.AsyncClient
    timeout: float  # seconds for one delivery
    webhook_secrets: list[bytes]  # signing secrets of webhooks (DEALERWATCH_WEBHOOK_SECRET)
    env: Callable[[str | None], str]  # a secret from the environment by name; raises if it is unset


def shown(url: str) -> str:
    """What may be shown of a receiver's URL: scheme and host (a robot's path or query, a Slack
    webhook's path, credentials in it: all secrets)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def failure(exc: Exception, url: str) -> DeliveryFailed:
    """A delivery failure whose text never carries the URL's secret parts."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query, parts.password or ""):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return DeliveryFailed(text)
