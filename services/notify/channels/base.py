"""The one interface every channel implements (like Alertmanager's `Notifier.Notify`), the one
failure a channel raises, and the one way a channel reaches its receiver's host."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

import httpcore
import httpx
from pydantic import Field

# the routes file reads only these variables: a receiver must not name DEALERWATCH_ADMIN_KEYS and
# send it to a host of its choice
RECEIVER_ENV_PREFIX = "DEALERWATCH_RECEIVER_"
SecretName = Annotated[
    str,
    Field(
        pattern=rf"^{RECEIVER_ENV_PREFIX}[A-Z0-9_]+$",
        description=f"The name of an environment variable starting with {RECEIVER_ENV_PREFIX} (the only ones read).",
    ),
]


class DeliveryFailed(Exception):
    """The receiver did not take the notification. `reason` is short and says nothing the
    receiver chose (it is shown to viewers, in the alert's delivery log); `detail` is for the
    service's log, without the URL's secret parts."""

    def __init__(self, reason: str, detail: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


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
    allow_private: bool = False  # receivers may be on private or loopback addresses


def shown(url: str) -> str:
    """What may be shown of a receiver's URL: scheme and host (a robot's path or query, a Slack
    webhook's path, credentials in it: all secrets)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def url_problem(url: str) -> str | None:
    """Why a receiver URL cannot be used (None: it can): http or https with a host, and no
    space or control character (a trailing newline in a variable, say)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "it holds a space, a line break or a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        return f"it is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "it needs http:// or https:// and a host"
    return None


def failure(exc: Exception, url: str) -> DeliveryFailed:
    """An HTTP client's error as a delivery failure: a short reason, and the text for the log
    without the URL's secret parts."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query, parts.password or ""):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    if isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        reason = "could not connect"
    elif isinstance(exc, httpx.RemoteProtocolError):
        reason = "the receiver broke the HTTP exchange"
    else:
        reason = f"request failed ({type(exc).__name__})"
    return DeliveryFailed(reason, text)


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


async def checked_address(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to for a receiver's host: resolved here, and refused when it is
    private, loopback, link-local or otherwise not public (the routes file must not reach
    internal services) unless DEALERWATCH_RECEIVERS_ALLOW_PRIVATE is set. Connecting to the
    address checked, not to the name again, leaves no room for a second answer (DNS rebinding)."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryFailed("the receiver's host name does not resolve", f"{host}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not allow_private and not all(_is_public(address) for address in addresses):
        raise DeliveryFailed(
            "the receiver's host is a private address (allowed only with DEALERWATCH_RECEIVERS_ALLOW_PRIVATE)",
            f"{host} resolves to {', '.join(addresses)}",
        )
    return addresses[0]


class _CheckedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's own network, connecting only to checked addresses (TLS still checks the
    certificate against the host name of the URL)."""

    def __init__(self, allow_private: bool):
        self._network = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await asyncio.wait_for(checked_address(host, port, self._allow_private), timeout)
        return await self._network.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise DeliveryFailed("receivers are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


def receiver_client(allow_private: bool) -> httpx.AsyncClient:
    """The HTTP client every HTTP channel sends with: no redirects, no proxy from the
    environment, each connection to a checked address."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx takes no network backend: its pool is replaced by one with the same defaults and ours
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_CheckedNetwork(allow_private),
    )
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)


async def connected_socket(host: str, port: int, timeout: float, allow_private: bool) -> socket.socket:
    """A TCP socket connected to the receiver's checked address (for SMTP)."""
    address = await asyncio.wait_for(checked_address(host, port, allow_private), timeout)
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock
