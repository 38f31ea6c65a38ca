"""Which channels an alert goes to: the routes file (hot-reloaded) or, without one, every
webhook in DEALERWATCH_WEBHOOK_URLS."""

from __future__ import annotations

import logging
import os

import httpx

from services.common.filewatch import FileWatch
from services.common.settings import Settings
from services.common.yamlsource import FileError

from . import alert as alerts
from . import routes_file
from .alert import RoutePlan
from .causes import Cause
from .channels import webhook
from .channels.base import RECEIVER_ENV_PREFIX, Channel, Context
from .channels.webhook import WebhookConfig

log = logging.getLogger("dealerwatch.notify.router")


class Router:
    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        """http: the client receivers are reached with (channels.base.receiver_client)."""
        self._settings = settings
        self._http = http
        self._secrets = [secret.get_secret_value().encode() for secret in settings.webhook_secret]
        self._spec: routes_file.RoutesSpec | None = None
        self._file = FileWatch(settings.routes_file) if settings.routes_file else None
        if settings.routes_file:
            self._use(routes_file.load(settings.routes_file))  # a broken file at start-up stops the service
        else:
            self.channels: dict[str, Channel] = {
                f"webhook-{n}": webhook.build(f"webhook-{n}", WebhookConfig(url=url), self._context(f"webhook-{n}", None))
                for n, url in enumerate(settings.webhook_urls, start=1)
            }

    def _use(self, loaded: routes_file.RoutesFile) -> None:
        channels = {}
        for name, receiver in loaded.spec.receivers.items():
            try:
                channels[name] = receiver.build(name, self._context(name, loaded))
            except ValueError as exc:  # a variable it names is unset or not what it needs
                raise routes_file.RoutesError(
                    loaded.source, [(loaded.receiver_line(name), f"receiver {name!r}: {exc}")]
                ) from None
        self._spec, self.channels = loaded.spec, channels

    def _context(self, receiver: str, loaded: routes_file.RoutesFile | None) -> Context:
        def env(variable: str | None) -> str:
            if not variable or not variable.startswith(RECEIVER_ENV_PREFIX):  # the file's models check it too
                raise ValueError(f"${variable} is not a receiver's variable (they start with {RECEIVER_ENV_PREFIX})")
            value = os.environ.get(variable)
            if not value:
                raise ValueError(f"${variable} is not set")
            return value

        timeout, allow_private = self._settings.delivery_timeout_seconds, self._settings.receivers_allow_private
        return Context(self._http, timeout, self._secrets, env, allow_private)

    def assignee(self, labels: dict[str, str], owner: str | None) -> str | None:
        """Who investigates: the rule's owner (the promotion's, the plan's visitor), else the
        routes file's first matching `assign` entry, else nobody (unassigned)."""
        if owner:
            return owner
        return routes_file.assignee_for(self._spec, labels) if self._spec else None

    @property
    def causes(self) -> tuple[Cause, ...]:
        return routes_file.causes_of(self._spec)

    def routed(self, labels: dict[str, str], owner: str | None) -> tuple[list[RoutePlan], str | None]:
        """The alert's route plans and its assignee, which is a label the routes can match."""
        assignee = self.assignee(labels, owner)
        return self.plans({**labels, "assignee": assignee} if assignee else labels), assignee

    def plans(self, labels: dict[str, str]) -> list[RoutePlan]:
        """What each route the alert reaches asks for (receiver, its target, options), stored with
        the alert so that reminders, escalation and resolved notices follow the same routes."""
        plans = routes_file.plans_for(self._spec, labels) if self._spec else [routes_file.Plan(name) for name in self.channels]
        return [
            alerts.route_plan(
                plan.receiver,
                self.target(plan.receiver),
                send_resolved=plan.send_resolved,
                repeat_seconds=plan.repeat_seconds,
                escalate_after_seconds=plan.escalate_after_seconds,
                escalate_to=plan.escalate_to,
                group_seconds=plan.group_seconds,
            )
            for plan in plans
        ]

    async def close(self) -> None:
        await self._http.aclose()

    def target(self, name: str) -> str:
        channel = self.channels.get(name)
        return channel.target() if channel else "(no longer configured)"

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def reload(self) -> list[str]:
        assert self._file is not None and self._settings.routes_file
        self._file.seen()
        try:
            self._use(routes_file.load(self._settings.routes_file))
        except FileError as exc:
            log.error("routes reload refused, the previous routes stay:\n%s", exc)
            return exc.lines()
        log.info("routes reloaded: %d receivers", len(self.channels))
        return []

    async def watch(self) -> None:
        if self._file is not None:
            await self._file.watch(self._settings.files_poll_seconds, self.reload)
