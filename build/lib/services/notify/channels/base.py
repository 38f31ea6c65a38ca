"""The one interface every channel implements (like Alertmanager's `Notifier.Notify`)."""

from __future__ import annotations

from typing import Protocol


class DeliveryFailed(Exception):
    """The receiver did not take the notification; the reason is kept in the delivery log."""


class Channel(Protocol):
    name: str

    def target(self) -> str:
        """Where it goes, safe to show (no tokens or passwords)."""

    async def send(self, alerts: list[dict]) -> None:
        """Deliver one message about these alerts (one, or a group) or raise DeliveryFailed.
        Each alert carries `notification`: firing, resolved, repeat or escalation."""
