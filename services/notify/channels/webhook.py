"""Webhook channel: a JSON POST. One alert: its view as the body. A group: the alerts in a list,
`{"notification": ..., "receiver": ..., "count": n, "alerts": [...]}`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import Context, DeliveryFailed, SecretName, failure, shown, url_problem

SIGNATURE_HEADER = "X-Dealerwatch-Signature"
TOLERANCE_SECONDS = 300  # what receivers should allow between `t` and their clock (the README's recipe)


def signature(secrets: list[bytes], body: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex>[,v1=<hex>...]`: one v1 per secret (several while a secret is
    rotated), each the HMAC-SHA256 of `<t>.` followed by the body. The timestamp is signed too,
    so a captured delivery cannot be replayed later than the receiver's tolerance."""
    signed = f"{timestamp}.".encode() + body
    return ",".join([f"t={timestamp}"] + [f"v1={hmac.new(s, signed, hashlib.sha256).hexdigest()}" for s in secrets])


def verify(header: str, body: bytes, secrets: list[bytes], now: float, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """The receiver's side (the README's recipe, used by the tests): a v1 made with one of its
    secrets, over this body and a timestamp within the tolerance of its clock."""
    parts = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key == "t"]
    if len(stamps) != 1 or not stamps[0].isascii() or not stamps[0].isdigit() or abs(now - int(stamps[0])) > tolerance:
        return False
    signed = f"{stamps[0]}.".encode() + body
    expected = [hmac.new(s, signed, hashlib.sha256).hexdigest() for s in secrets]
    return any(hmac.compare_digest(value, e) for key, _, value in parts if key == "v1" for e in expected)


class WebhookConfig(BaseModel):
    """`webhook:` in the routes file."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, description="Only for URLs without secrets.")
    url_env: SecretName | None = Field(default=None, description="Environment variable holding the URL.")

    @model_validator(mode="after")
    def _one_source(self) -> WebhookConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url, url_env")
        if self.url is not None and (problem := url_problem(self.url)):
            raise ValueError(f"url: {problem}")
        return self

    def url_in(self, context: Context) -> str:
        if self.url is not None:
            return self.url
        url = context.env(self.url_env)
        if problem := url_problem(url):
            raise ValueError(f"${self.url_env} cannot be used as a URL: {problem}")
        return url


def build(name: str, config: WebhookConfig, context: Context) -> WebhookChannel:
    return WebhookChannel(name, config.url_in(context), context.http, context.timeout, context.webhook_secrets)


class WebhookChannel:
    def __init__(self, name: str, url: str, client: httpx.AsyncClient, timeout: float, secrets: list[bytes] | None = None):
        self.name = name
        self._url = url
        self._client = client
        self._timeout = timeout
        self._secrets = secrets or []

    def target(self) -> str:
        return shown(self._url)

    async def send(self, alerts: list[dict[str, Any]]) -> None:
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
        if self._secrets:
            headers[SIGNATURE_HEADER] = signature(self._secrets, body, int(time.time()))
        try:
            response = await self._client.post(self._url, content=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise failure(exc, self._url) from None
        if response.status_code >= 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")
