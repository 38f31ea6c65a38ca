"""Webhook channel: the alert as a JSON POST."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx

from .base import DeliveryFailed


class WebhookChannel:
    def __init__(self, name: str, url: str, client: httpx.AsyncClient, timeout: float):
        self.name = name
        self._url = url
        self._client = client
        self._timeout = timeout

    def target(self) -> str:
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    async def send(self, alert: dict) -> None:
        body = json.dumps(alert, default=str, ensure_ascii=False).encode()
        try:
            response = await self._client.post(
                self._url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    # receivers can drop a repeat (a retry after a lost response)
                    "Idempotency-Key": alert["alert_id"],
                    "User-Agent": "dealerwatch-notify",
                },
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if response.status_code >= 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")
