"""The keys under which a dealer's state is kept (in memory and in MongoDB): one constructor and
one parser each, so that what is stored is read back exactly as it was written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Where = tuple[tuple[str, str, Any], ...]  # (field, operator, value), sorted


@dataclass(frozen=True)
class SourceKey:
    """What a source keeps from events: `series|sale|amount|[]`, `last|visit||[["kind", "eq", "leadership"]]`."""

    kind: str  # series | last | latest
    event_type: str
    field: str | None
    where: Where = ()
    text: bool = False  # a distinct measure: the values are text (outlet ids)

    def __str__(self) -> str:
        key = f"{self.kind}|{self.event_type}|{self.field or ''}|{json.dumps(self.where)}"
        return key + "|text" if self.text else key

    @classmethod
    def parse(cls, key: str) -> SourceKey:
        kind, event_type, field, rest = key.split("|", 3)  # the where clause may hold "|" itself
        text = rest.endswith("|text")
        where = json.loads(rest.removesuffix("|text") if text else rest)
        return cls(kind, event_type, field or None, tuple(tuple(condition) for condition in where), text)


@dataclass(frozen=True)
class EpisodeKey:
    """One episode of a rule for a dealer, or for one of its subjects (a promotion): `sales-drop`,
    `promotion-over-budget|P-7`. Rule ids hold no `|`; a subject may."""

    rule_id: str
    subject: str | None = None

    def __str__(self) -> str:
        return self.text(self.rule_id, self.subject)

    @staticmethod
    def text(rule_id: str, subject: str | None) -> str:
        """str(EpisodeKey(rule_id, subject)), without building one (judging asks for thousands)."""
        return rule_id if subject is None else f"{rule_id}|{subject}"

    @classmethod
    def parse(cls, key: str) -> EpisodeKey:
        return cls(*cls.parts(key))

    @staticmethod
    def parts(key: str) -> tuple[str, str | None]:
        """(rule id, subject) of a key, without building an EpisodeKey."""
        rule_id, _, subject = key.partition("|")
        return rule_id, subject or None
