"""Webhook channel: a JSON POST. One alert: its view as the body. A group: the alerts in a list,
`{"notification": ..., "receiver": ..., "count": n, "alerts": [...]}`."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

import httpx

from .base import DeliveryFailed


SIGNATURE_HEADER = "X-Dealerwatch-Signature"


def signature(secret: bytes, body: bytes) -> str:
    """What receivers compare (in constant time) with the header: sha256=<hex HMAC of the body>."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, name: str, url: str, client: httpx.AsyncClient, timeout: float, secret: bytes | None = None):
        self.name = name
        self._url = url
        self._client = client
        self._timeout = timeout
        self._secret = secret

    def target(self) -> str:
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    async def send(self, alerts: list[dict]) -> None:
        if len(alerts) == 1:
            message, key = alerts[0], alerts[0]["notification_id"]
        else:
            message = {"notification": alerts[0]["notification"], "receiver": self.name, "count": len(alerts), "alerts": alerts}
            key = hashlib.sha256(",".join(sorted(a["notification_id"] for a in alerts)).encode()).hexdigest()[:32]
        body = json.dumps(message, default=str, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            # receivers can drop a repeat (a retry after a lost response)
            "Idempotency-Key": key,
            "User-Agent": "dealerwatch-notify",
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        try:
            response = await self._client.post(self._url, content=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if response.status_code >= 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")
