"""Group robots operations teams read: WeCom, DingTalk and Feishu (with their request signing),
and Slack-compatible incoming webhooks. One small class each, one shared POST."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import Field

from . import escaping
from .base import Context, DeliveryFailed, SecretName, failure, shown
from .rendering import fit, language_of, render
from .webhook import WebhookConfig


class RobotConfig(WebhookConfig):
    """`wecom:`, `dingtalk:`, `feishu:` or `slack:` in the routes file; the URL carries a token: use url_env."""

    secret_env: SecretName | None = Field(default=None, description="DingTalk/Feishu signing secret (variable name).")
    language: Literal["zh", "en"] = "zh"


def builder(robot: type[_Robot]) -> Callable[[str, RobotConfig, Context], _Robot]:
    def build(name: str, config: RobotConfig, context: Context) -> _Robot:
        secret = context.env(config.secret_env) if config.secret_env else None
        return robot(name, config.url_in(context), context.http, secret=secret, language=config.language, timeout=context.timeout)

    return build


class _Robot:
    MAX_BYTES = 4096  # the message size the robot accepts (its documented limit, with room to spare)
    ESCAPE = staticmethod(escaping.markdown)  # what makes event text inert in its format

    def __init__(
        self,
        name: str,
        url: str,
        client: httpx.AsyncClient,
        *,
        secret: str | None = None,
        language: str = "zh",
        timeout: float = 5.0,
    ):
        self.name, self._url, self._client = name, url, client
        self._secret, self._language, self._timeout = secret, language, timeout

    def target(self) -> str:
        return f"{type(self).__name__.removesuffix('Channel').lower()} {shown(self._url)}"

    async def send(self, alerts: list[dict[str, Any]]) -> None:
        language = language_of(alerts, self._language)
        text = fit(render("text", alerts, language, self.ESCAPE), self.MAX_BYTES, language)
        url, body = self.request(text)
        try:
            response = await self._client.post(url, json=body, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise failure(exc, url) from None
        if response.status_code >= 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")
        self.check(response)

    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def check(self, response: httpx.Response) -> None:
        """Robots answer 200 with an error code in a JSON object (Slack answers `ok` as text)."""
        try:
            answer = response.json()
        except ValueError:
            return
        if not isinstance(answer, dict):
            raise DeliveryFailed("the robot's answer is not understood (JSON, not an object)", f"answer: {response.text[:200]}")
        code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
        if code not in (0, None):
            message = answer.get("errmsg") or answer.get("msg") or ""
            raise DeliveryFailed(f"robot refused: error {str(code)[:20]}", f"robot refused: {code} {str(message)[:200]}".strip())


class WeComChannel(_Robot):
    MAX_BYTES = 4000  # markdown content: 4,096 bytes

    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        return self._url, {"msgtype": "markdown", "markdown": {"content": text}}


class DingTalkChannel(_Robot):
    MAX_BYTES = 19_000  # markdown text: 20,000 bytes

    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        url = self._url
        if self._secret:
            timestamp = str(round(time.time() * 1000))
            digest = hmac.new(self._secret.encode(), f"{timestamp}\n{self._secret}".encode(), hashlib.sha256).digest()
            sign = urllib.parse.quote_plus(base64.b64encode(digest))
            url = f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"
        title = text.splitlines()[0]
        return url, {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


class FeishuChannel(_Robot):
    MAX_BYTES = 18_000  # request body: 20 KB
    ESCAPE = staticmethod(escaping.plain)

    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if self._secret:
            timestamp = str(int(time.time()))
            key = f"{timestamp}\n{self._secret}".encode()
            body["timestamp"] = timestamp
            body["sign"] = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        return self._url, body


class SlackChannel(_Robot):
    MAX_BYTES = 39_000  # text: 40,000 characters
    ESCAPE = staticmethod(escaping.slack)

    def request(self, text: str) -> tuple[str, dict[str, Any]]:
        return self._url, {"text": text}
