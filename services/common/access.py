"""Who may do what over HTTP: bearer keys by role, checked before a request's body is read.

Production mode (any key configured): reading (GET) needs a reader or a writer key, anything
else a writer key; only the paths a service names public (health, its API description, the
board's static page) are open. Development mode (no key at all) is open, and allowed only on a
loopback address: a service whose bind address resolves to anything else refuses to start, and
it answers only requests addressed to a loopback host name (a web page elsewhere cannot reach a
developer's stack through a name that resolves to 127.0.0.1: DNS rebinding).

A refusal sent before the body is read (401, 403, 413) is followed by reading and dropping the
rest of the body for a moment (nginx's "lingering close"): closing at once would reset the
connection while the client still sends, and the client would never read why.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import socket

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READING = ("GET", "HEAD", "OPTIONS")
DRAIN_SECONDS = 10.0  # the longest a refused body is read (and dropped) so that the client hears why


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


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def refuse_open_bind(service: str, host: str, keys: Keys, variables: str) -> None:
    """Development mode (no keys) only on loopback: the bind address is resolved (`0`, `0x0` or a
    name can mean every interface or another host) and each address it stands for must be one."""
    if not keys.open:
        return
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except OSError:
        addresses = set()
    if not addresses or not all(_loopback(address) for address in addresses):
        shown = ", ".join(sorted(addresses)) or "nothing"
        raise SystemExit(
            f"{service}: bound to {host} ({shown}) without keys; set {variables} (production mode), "
            "or bind to 127.0.0.1 for development"
        )


def loopback_host(host_header: str) -> bool:
    """A Host header naming this machine by a loopback name: localhost, 127.x.y.z or [::1]."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host == "localhost" or _loopback(host)


class AccessMiddleware:
    """Pure ASGI, in front of the application: 401 without a key allowed for the request, 413
    for a body over `max_body` bytes, 403 in development mode for a host that is not loopback;
    the body is read (up to the limit) only once the key passed."""

    def __init__(self, app: ASGIApp, keys: Keys, *, public: tuple[str, ...], max_body: int, scrapers: Keys | None = None):
        self.app = app
        self.keys = keys
        self.scrapers = scrapers  # who may also read GET /metrics (metrics.py)
        self.public = public  # exact paths, or prefixes written `/board/*`
        self.max_body = max_body

    def _is_public(self, path: str) -> bool:
        return any(path == p or (p.endswith("/*") and path.startswith(p[:-1])) for p in self.public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if self.keys.open and not loopback_host(headers.get("host", "")):
            detail = "development mode (no keys) answers only requests to localhost or a loopback address"
            return await refuse(receive, send, 403, detail)
        write = scope["method"] not in READING
        authorization = headers.get("authorization", "")
        scrapers = self.scrapers
        scraping = scope["path"] == "/metrics" and not write and scrapers is not None and not scrapers.open
        if scraping and scrapers is not None and scrapers.allows(authorization, write=False):
            return await self.app(scope, receive, send)
        if not self._is_public(scope["path"]) and not self.keys.allows(authorization, write):
            if write and self.keys.allows(authorization, write=False):
                return await refuse(receive, send, 403, "this key may read, not act: an operator key is needed")
            wanted = "a key allowed to act" if write else "a key"
            detail = f"missing or invalid API key: this needs {wanted}"
            return await refuse(receive, send, 401, detail, {"www-authenticate": "Bearer"})
        if not write:
            return await self.app(scope, receive, send)
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_body:
            return await refuse(receive, send, 413, f"body larger than {self.max_body} bytes")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body:
                return await refuse(receive, send, 413, f"body larger than {self.max_body} bytes", more_body=more)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def refuse(
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    more_body: bool = True,
    key: str = "detail",
) -> None:
    """Answer `status` before the request's body is read, then read and drop the rest of the body
    (at most DRAIN_SECONDS) before the response ends, so the client that is still sending reads
    the answer instead of a reset connection. `more_body`: False when the body was read already."""
    body = json.dumps({key: detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": more_body})
    if more_body:
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while (message := await receive())["type"] == "http.request" and message.get("more_body", False):
                    pass
        except TimeoutError:
            pass
        await send({"type": "http.response.body", "body": b"", "more_body": False})
