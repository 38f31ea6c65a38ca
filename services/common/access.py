"""Who may do what over HTTP: bearer keys by role, checked before a request's body is read.

Production mode (any key configured): reading (GET) needs a reader or a writer key, anything
else a writer key; only the paths a service names public (health, its API description, the
board's static page) are open. Development mode (no key at all) is open, and allowed only on a
loopback address: a service bound to another address without keys refuses to start.
"""

from __future__ import annotations

import hmac
import json

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK = ("127.0.0.1", "::1", "localhost")
READING = ("GET", "HEAD", "OPTIONS")


class Keys:
    def __init__(self, readers: list[SecretStr], writers: list[SecretStr]):
        self._readers = [key.get_secret_value().encode() for key in readers]
        self._writers = [key.get_secret_value().encode() for key in writers]

    @property
    def open(self) -> bool:
        return not self._readers and not self._writers

    def allows(self, authorization: str, write: bool) -> bool:
        if self.open:
            return True
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        presented = token.strip().encode()
        allowed = self._writers if write else self._readers + self._writers
        # compare with every key, so that timing does not tell which one matched
        return any([hmac.compare_digest(presented, key) for key in allowed])


def refuse_open_bind(service: str, host: str, keys: Keys, variables: str) -> None:
    """Development mode (no keys) only on loopback: anywhere else the service would be open."""
    if keys.open and host not in LOOPBACK:
        raise SystemExit(
            f"{service}: bound to {host} without keys; set {variables} (production mode), or bind to 127.0.0.1 for development"
        )


class AccessMiddleware:
    """Pure ASGI, in front of the application: 401 without a key allowed for the request, 413
    for a body over `max_body` bytes; the body is read (up to the limit) only once the key passed."""

    def __init__(self, app: ASGIApp, keys: Keys, *, public: tuple[str, ...], max_body: int):
        self.app = app
        self.keys = keys
        self.public = public  # exact paths, or prefixes written `/board/*`
        self.max_body = max_body

    def _is_public(self, path: str) -> bool:
        return any(path == p or (p.endswith("/*") and path.startswith(p[:-1])) for p in self.public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        write = scope["method"] not in READING
        authorization = headers.get("authorization", "")
        if not self._is_public(scope["path"]) and not self.keys.allows(authorization, write):
            if write and self.keys.allows(authorization, write=False):
                return await _answer(send, 403, "this key may read, not act: an operator key is needed")
            wanted = "a key allowed to act" if write else "a key"
            return await _answer(send, 401, f"missing or invalid API key: this needs {wanted}", {"www-authenticate": "Bearer"})
        if not write:
            return await self.app(scope, receive, send)
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body:
            return await _answer(send, 413, f"body larger than {self.max_body} bytes")
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await _answer(send, 413, f"body larger than {self.max_body} bytes")
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
