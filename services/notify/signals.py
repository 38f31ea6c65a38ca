"""Rules' alert signals applied to the alerts: a new alert (its notifications queued, unless a
silence mutes it), a later firing, the rules' own resolve, and a recurrence after a person
resolved the alert. Idempotent: a signal applied twice, or late, changes nothing more."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.common.alerts import AlertSignal
from services.common.timeutil import utcnow

from . import alert as alerts
from .alert import RoutePlan
from .outbox import Outbox
from .silences import SilenceStore
from .store import AlertStore


class SignalIntake:
    def __init__(self, store: AlertStore, outbox: Outbox, silences: SilenceStore):
        self._store, self._outbox, self._silences = store, outbox, silences

    async def apply_batch(self, batch: list[tuple[AlertSignal, list[RoutePlan], str | None]]) -> list[bool]:
        """apply() for each (signal, routes, assignee) of a batch, in order, with the same outcome: the
        first signal of each alert is tried as a new alert in one bulk write for the whole
        batch; the others (and those whose alert existed) follow one by one. Which created an alert."""
        first: dict[str, int] = {}
        for index, (signal, _, _) in enumerate(batch):
            first.setdefault(signal.alert_id, index)
        now = utcnow()
        firsts = [batch[i] for i in first.values()]
        created_ids = await self._store.insert_many(
            [await self._new(signal, routes, assignee, now, None) for signal, routes, assignee in firsts]
        )
        created = []
        for index, (signal, routes, assignee) in enumerate(batch):
            if first[signal.alert_id] == index and signal.alert_id in created_ids:
                created.append(True)
            else:
                created.append(await self.apply(signal, routes, assignee, exists=first[signal.alert_id] == index))
        return created

    async def _new(
        self, signal: AlertSignal, routes: list[RoutePlan], assignee: str | None, now: dt.datetime, previous: str | None
    ) -> tuple[alerts.AlertDocument, str]:
        """The alert a signal would open, and the change that is."""
        resolved = signal.state == "resolved"
        labels = {**signal.model_dump(), "labels": signal.labels, "assignee": assignee}
        muted_by = [] if resolved else await self._silences.muting(labels, now)
        document = alerts.new_document(signal, routes, now, previous, muted_by, assignee)
        return document, "resolved" if resolved else "opened"

    async def apply(
        self,
        signal: AlertSignal,
        routes: list[RoutePlan],
        assignee: str | None = None,
        previous: str | None = None,
        *,
        exists: bool = False,
    ) -> bool:
        """Store a signal; True if it created an alert (the caller then wakes the sender).
        routes: the plans of the routes it reaches; assignee: who investigates a new alert;
        previous: the alert a person resolved before this episode recurred; exists: its alert
        is known to be stored already."""
        now = utcnow()
        resolved = signal.state == "resolved"
        if not exists and await self._store.insert(*await self._new(signal, routes, assignee, now, previous)):
            return True
        if resolved:
            changed = await self._store.change(signal.alert_id, *alerts.resolved_by_rules(signal, now), "resolved")
            if changed is not None:
                await self._outbox.send_resolved_notices(changed)
                return False
        elif await self._store.change(signal.alert_id, *alerts.fired_again(signal, now), "updated") is not None:
            return False
        recurrence = await self._recurrence(signal)
        if recurrence is None:
            return False
        # the episode goes on after a person resolved its alert: its signals now belong to the new alert
        successor = signal.model_copy(
            update={
                "alert_id": recurrence["alert_id"],
                "opened_at": recurrence["at"],
                "firing_count": signal.firing_count - recurrence["base"],
            }
        )
        return await self.apply(successor, routes, assignee, previous=signal.alert_id)

    async def _recurrence(self, signal: AlertSignal) -> dict[str, Any] | None:
        """The alert that carries on an episode whose alert a person resolved: created by the
        first later firing (its id derived from the resolved one, so redelivery finds it again)."""
        alert = await self._store.get(signal.alert_id, {"status": 1, "resolved_by": 1, "count": 1, "recurrence": 1})
        if alert is None or not alerts.resolved_by_a_person(alert):
            return None
        if alert.get("recurrence") or signal.state == "resolved" or signal.firing_count <= alert["count"]:
            return alert.get("recurrence")  # (an old firing from before the resolve is ignored)
        recurrence = alerts.recurrence_of(signal.alert_id, alert["count"], signal.at)
        if await self._store.claim(signal.alert_id, *alerts.recurrence_claimed(recurrence)):
            return recurrence
        claimed = await self._store.get(signal.alert_id, {"recurrence": 1})
        return claimed["recurrence"] if claimed else None
