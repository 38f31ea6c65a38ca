"""Which channels an alert goes to: the routes file (hot-reloaded) or, without one, every
webhook in DEALERWATCH_WEBHOOK_URLS."""

from __future__ import annotations

import asyncio
import logging
import os

import httpx

from services.common.settings import Settings
from services.common.yamlsource import PolicyError

from . import routing
from .channels.base import Channel
from .channels.webhook import WebhookChannel

log = logging.getLogger("dealerwatch.notify.router")


class Router:
    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        self._settings = settings
        self._http = http
        self._secret = settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else None
        self._spec: routing.RoutesSpec | None = None
        self._stamp = None
        if settings.routes_file:
            self._stamp = self._file_stamp()
            self._use(routing.load(settings.routes_file))  # a broken file at start-up stops the service
        else:
            self.channels: dict[str, Channel] = {
                f"webhook-{n}": self._webhook(f"webhook-{n}", url) for n, url in enumerate(settings.webhook_urls, start=1)
            }

    def _webhook(self, name: str, url: str) -> WebhookChannel:
        return WebhookChannel(name, url, self._http, self._settings.webhook_timeout_seconds, self._secret)

    def _use(self, spec: routing.RoutesSpec) -> None:
        channels = {}
        for name, receiver in spec.receivers.items():
            url = receiver.webhook.url or os.environ.get(receiver.webhook.url_env or "")
            if not url:
                raise PolicyError(self._settings.routes_file, [(None, f"receiver {name!r}: ${receiver.webhook.url_env} is not set")])
            channels[name] = self._webhook(name, url)
        self._spec, self.channels = spec, channels

    def receivers(self, labels: dict[str, str]) -> dict[str, str]:
        """receiver name -> displayable target, for an alert with these labels."""
        names = routing.receivers_for(self._spec, labels) if self._spec else list(self.channels)
        return {name: self.channels[name].target() for name in names}

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def _file_stamp(self):
        try:
            info = os.stat(self._settings.routes_file)
            return info.st_mtime_ns, info.st_size
        except OSError:
            return None

    def reload(self) -> list[str]:
        self._stamp = self._file_stamp()
        try:
            self._use(routing.load(self._settings.routes_file))
        except PolicyError as exc:
            log.error("routes reload refused, the previous routes stay:\n%s", exc)
            return exc.lines()
        log.info("routes reloaded: %d receivers", len(self.channels))
        return []

    async def watch(self) -> None:
        if not self._settings.routes_file:
            return
        while True:
            await asyncio.sleep(self._settings.policy_poll_seconds)
            if self._file_stamp() != self._stamp:
                self.reload()
