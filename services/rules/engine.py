"""The only module that imports durable_rules: a stateless matcher.

Facts (measures of one dealer or promotion at one time) go in; the ids of the
rules whose conditions hold come out. durable-rules is used the way the stack
facts found safe: one Host per process, one fixed session, facts asserted and
retracted at once (so every matching rule fires, not just the first), actions
that only record the match. Per-dealer state, windows and time live in our own
code, never in durable-rules sessions.
"""

from __future__ import annotations

import copy
import itertools
import threading

from durable import engine as durable_engine

_SID = "0"


class _Host(durable_engine.Host):
    def __init__(self, fired: list[str]):
        self._fired = fired
        super().__init__()

    def get_action(self, action_name: str):
        fired = self._fired

        def record(c) -> None:
            fired.append(action_name)

        return record


class Matcher:
    """Evaluates compiled rule patterns. Not thread-safe by itself; calls are serialized."""

    _names = itertools.count()

    def __init__(self, patterns: dict[str, dict]):
        """patterns: rule id -> durable-rules expression for the fact (`m`)."""
        self._fired: list[str] = []
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._host = _Host(self._fired)
        self._ruleset = f"policy{next(self._names)}"
        definition = {
            rule_id: {"all": [{"m": copy.deepcopy(pattern)}], "run": rule_id}
            for rule_id, pattern in patterns.items()
        }
        self._host.set_rulesets({self._ruleset: definition})

    def match(self, fact: dict) -> list[str]:
        """Ids of every rule whose pattern holds for `fact` (a flat dict of numbers)."""
        with self._lock:
            self._fired.clear()
            message = dict(fact, id=next(self._ids), sid=_SID)
            try:
                self._host.assert_fact(self._ruleset, message)
            except durable_engine.MessageNotHandledException:
                return []
            try:
                self._host.retract_fact(self._ruleset, message)
            except durable_engine.MessageNotHandledException:
                pass
            return list(self._fired)
