"""The only module that imports durable_rules: a stateless matcher.

Facts (measures of one dealer or promotion at one time) go in; the ids of the
rules whose conditions hold come out. durable-rules is used the way the stack
facts found safe: one Host per process, one fixed session per ruleset, facts
asserted and retracted at once (so every matching rule fires, not just the
first), actions that only record the match. Per-dealer state, windows and time
live in our own code, never in durable-rules sessions.

durable-rules has no way to replace a ruleset; `Matcher.replace` swaps one in
place with the sequence that was measured not to leak or crash over thousands
of reloads (measured before the project began: a copy, a slot swap, a sentinel action, then
the old session and ruleset deleted; anything less leaked or crashed).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import sys
import threading
from collections.abc import Callable
from typing import Any

import durable_rules_engine
from durable import engine as durable_engine

from .metrics import ENGINE_ANSWERS_REUSED, ENGINE_SECONDS

_SID = "0"
_SENTINEL = "__sentinel__"
Pattern = dict[str, Any]  # a durable-rules condition (expressions.to_durable)


class _Host(durable_engine.Host):  # type: ignore[misc]  # durable-rules has no types
    """One per process (a Host starts two timer threads and cannot be stopped)."""

    def __init__(self) -> None:
        self.sinks: dict[str, list[str]] = {}
        super().__init__()

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        ruleset, _, rule_id = action_name.partition("/")
        sinks = self.sinks

        def record(c: Any) -> None:
            if rule_id != _SENTINEL:
                sinks[ruleset].append(rule_id)

        return record


_HOST: _Host | None = None
_HOST_LOCK = threading.Lock()
_names = itertools.count()


def _host() -> _Host:
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = _Host()
        return _HOST


_LARGEST = sys.float_info.max


def number(value: float) -> str | None:
    """A number as text durable-rules parses right, or None for NaN (an undefined measure).

    Its parser reads a number without a decimal point as a 64-bit integer: `1e-05` and `2e+16`
    are refused (error 204) and integers beyond 64 bits are silently clamped. Every value is
    therefore written as a double with a decimal point (`1.0e-05`); infinities become the
    largest double, which compares the same way with every finite number."""
    if type(value) is float and -_LARGEST <= value <= _LARGEST:  # the common case, quickly (NaN fails it)
        text = repr(value)
        return text if "." in text else text.replace("e", ".0e") if "e" in text else text + ".0"
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        value = math.copysign(_LARGEST, value)
    text = repr(value)
    if "." not in text:
        text = text.replace("e", ".0e") if "e" in text else text + ".0"
    return text


def as_read(fact: dict[str, float]) -> dict[str, float]:
    """The fact as the engine reads it (`number`): infinities as the largest double, NaN left out."""
    seen = {}
    for name, value in fact.items():
        if (read := read_number(value)) is not None:
            seen[name] = read
    return seen


def read_number(value: float | None) -> float | None:
    """A value as the engine reads it (`number`): an infinity as the largest double, NaN as none."""
    if type(value) is float and -_LARGEST <= value <= _LARGEST:
        return value
    if value is None or math.isnan(value := float(value)):
        return None
    return math.copysign(_LARGEST, value) if math.isinf(value) else value


MEMO_SIZE = 4096  # answers kept per matcher (of distinct outcomes of its comparisons: a few dozen in practice)


def dumps(data: Any) -> str:
    """JSON for durable-rules: like json.dumps, with every number written by `number`."""
    if isinstance(data, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in data.items()) + "}"
    if isinstance(data, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in data) + "]"
    if isinstance(data, bool) or data is None or isinstance(data, str):
        return json.dumps(data, ensure_ascii=False)
    text = number(data)
    if text is None:
        raise ValueError("not a number (NaN) cannot be compared")
    return text


_QUOTED: dict[str, str] = {}


def _quoted(name: str) -> str:
    quoted = _QUOTED.get(name)
    if quoted is None:
        quoted = _QUOTED[name] = json.dumps(name)
    return quoted


class _Ruleset(durable_engine.Ruleset):  # type: ignore[misc]
    """durable-rules' Ruleset, its definition encoded by `dumps` (json.dumps writes 1e-05)."""

    def __init__(self, name: str, host: _Host, definition: dict[str, Any]) -> None:
        self._actions = {}
        self._name = name
        self._host = host
        for rule_name, rule in definition.items():
            self._actions[rule_name] = durable_engine.Promise(host.get_action(rule.pop("run")))
        self._handle = durable_rules_engine.create_ruleset(name, dumps(definition))
        self._definition = definition


def _raise_errors(error: BaseException | None, state: Any) -> None:
    if error:
        raise error


_released: list[Matcher] = []  # rulesets cannot be removed from a Host safely: reuse them


Outcomes = Callable[[dict[str, float]], int]


class Matcher:
    """Evaluates compiled rule patterns; calls are serialized by a lock.

    With `outcomes` (expressions.outcome_key of the same rules' conditions), an answer of the
    engine is kept for the outcomes of the comparisons it was given and reused for a fact whose
    comparisons all come out the same: which rules hold depends on nothing else, so the engine
    is asked every question whose answer could differ from one it gave (#26: most judgements of
    a dealer repeat the last one's outcomes, at a quarter of an engine call's cost)."""

    def __init__(self, patterns: dict[str, Pattern], outcomes: Outcomes | None = None):
        """patterns: rule id -> durable-rules expression over the fact's fields."""
        self._outcomes = outcomes
        self._memo: dict[int, tuple[str, ...]] = {}
        self._host = _host()
        self._name = f"matcher{next(_names)}"
        self._fired: list[str] = []
        self._host.sinks[self._name] = self._fired
        self._lock = threading.Lock()
        self._ids = itertools.count()
        ruleset = _Ruleset(self._name, self._host, copy.deepcopy(self._definition(patterns)))
        with _HOST_LOCK:
            self._host._ruleset_directory[self._name] = ruleset
            self._host._ruleset_list.append(ruleset)

    def _definition(self, patterns: dict[str, Pattern]) -> dict[str, Any]:
        definition = {
            rule_id: {"all": [{"m": copy.deepcopy(pattern)}], "run": f"{self._name}/{rule_id}"}
            for rule_id, pattern in patterns.items()
        }
        # a no-op rule: its action runs before a session is deleted (deleting a session whose
        # action never ran crashes the process)
        definition[_SENTINEL] = {"all": [{"m": {"$eq": {_SENTINEL: 1}}}], "run": f"{self._name}/{_SENTINEL}"}
        return definition

    def match(self, fact: dict[str, float]) -> list[str]:
        """Ids of every rule whose pattern holds for `fact` (a flat dict of numbers)."""
        with self._lock:
            key = None if self._outcomes is None else self._outcomes(as_read(fact))
            if key is not None and (answer := self._memo.get(key)) is not None:
                ENGINE_ANSWERS_REUSED.inc()
                return list(answer)
            with ENGINE_SECONDS.time():
                found = self._match(fact)
            if key is not None:
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = tuple(found)
            return found

    def answer(self, key: int, fact: Callable[[], dict[str, float]]) -> list[str]:
        """The rules that hold for a fact whose comparisons come out as `key` (outcomes.py, the
        bits of `expressions.outcome_key`): the engine's answer for that outcome if it gave one,
        else the engine asked with the fact (`fact()`: its measures, worked out only then)."""
        with self._lock:
            if (answer := self._memo.get(key)) is not None:
                ENGINE_ANSWERS_REUSED.inc()
                return list(answer)
            with ENGINE_SECONDS.time():
                found = self._match(fact())
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = tuple(found)
            return found

    def _match(self, fact: dict[str, float]) -> list[str]:
        """Host.assert_fact + Host.retract_fact, encoding the fact once instead of twice."""
        self._fired.clear()
        message = {"id": next(self._ids), "sid": _SID}
        fields = [f'"id":{message["id"]},"sid":"{_SID}"']
        for name, value in fact.items():
            text = number(value)
            if text is not None:  # NaN: the measure is undefined, its comparisons false
                fields.append(f"{_quoted(name)}:{text}")
        text = "{" + ",".join(fields) + "}"
        ruleset = self._host._ruleset_directory[self._name]
        for operation in (durable_rules_engine.assert_fact, durable_rules_engine.retract_fact):
            try:
                state = ruleset._handle_result(operation(ruleset._handle, text), message)
            except durable_engine.MessageNotHandledException:
                if operation is durable_rules_engine.assert_fact:
                    return []
                continue
            ruleset.do_actions(state, _raise_errors)
        # an `or` is expanded into one alternative per branch, each firing the action
        return list(dict.fromkeys(self._fired))

    @classmethod
    def acquire(cls, patterns: dict[str, Pattern], outcomes: Outcomes | None = None) -> Matcher:
        """A released matcher with these patterns, or a new one."""
        with _HOST_LOCK:
            reused = _released.pop() if _released else None
        if reused is None:
            return cls(patterns, outcomes)
        try:
            reused.replace(patterns, outcomes)
        except BaseException:
            with _HOST_LOCK:
                _released.append(reused)  # still sound: replace changed nothing
            raise
        return reused

    def release(self) -> None:
        """Done with this matcher: its ruleset is handed to the next Matcher created."""
        self.replace({})
        with _HOST_LOCK:
            _released.append(self)

    def replace(self, patterns: dict[str, Pattern], outcomes: Outcomes | None = None) -> None:
        """Swap in new patterns without a new Host (no thread or memory growth per reload)."""
        with self._lock:
            self._outcomes, self._memo = outcomes, {}
            host = self._host
            old = host._ruleset_directory[self._name]
            # the constructor deletes the "run" keys of what it is given: give it a copy
            new = _Ruleset(self._name, host, copy.deepcopy(self._definition(patterns)))
            self._match({_SENTINEL: 1})  # make sure the old session has run an action
            host._ruleset_directory[self._name] = new
            # same slot: shrinking the list races the host's timer thread
            host._ruleset_list[host._ruleset_list.index(old)] = new
            old.delete_state(_SID)
            durable_rules_engine.delete_ruleset(old._handle)
