"""Where the command line finds notify and with which key: `--url`/`--key`, else the environment
(DEALERWATCH_URL, DEALERWATCH_KEY), else the config file (`$XDG_CONFIG_HOME/dealerwatch/config.yaml`,
`~/.config/dealerwatch/config.yaml`: `url:`, `key:`, `by:`), else http://127.0.0.1:8081 without a key.
Every refusal of the API is a `Refused` with its status and the API's own message."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

DEFAULT_URL = "http://127.0.0.1:8081"


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dealerwatch" / "config.yaml"


def _config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise Refused(0, f"{path}: expected a mapping with url, key and by")
    return loaded


@dataclass
class Client:
    url: str
    key: str | None
    by: str

    @classmethod
    def resolve(cls, url: str | None, key: str | None, by: str | None = None) -> Client:
        config = _config()
        return cls(
            url=(url or os.environ.get("DEALERWATCH_URL") or config.get("url") or DEFAULT_URL).rstrip("/"),
            key=key or os.environ.get("DEALERWATCH_KEY") or config.get("key"),
            by=by or os.environ.get("DEALERWATCH_BY") or config.get("by") or getpass.getuser(),
        )

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = httpx.request(method, f"{self.url}{path}", params=query, json=body, headers=headers, timeout=30)
        except httpx.HTTPError as exc:
            raise Refused(0, f"notify is not reachable at {self.url} ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise Refused(response.status_code, _message(response))
        return response.json()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    detail = body.get("detail", body.get("error", body)) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI's validation errors
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail)
