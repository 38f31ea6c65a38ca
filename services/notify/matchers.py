"""Label matchers (like Alertmanager's `Matchers`): the one way silences, the API's filters,
the live stream and routes say which alerts they mean.

An alert's labels are its rule's labels (region, team, ...) and its `severity`, `rule_id`,
`dealer_id`, `status` and `assignee`. A matcher set holds when every label it names has the value it wants;
the same set can be turned into a MongoDB query on the alerts collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TOP_LEVEL = ("severity", "rule_id", "dealer_id", "status", "assignee")  # fields of the alert; other labels live in `labels`


def labels_of(alert: Mapping[str, Any]) -> dict[str, str]:
    """An alert's (or a signal's) labels: its rule's, then its own fields, which win."""
    own = {name: alert[name] for name in TOP_LEVEL if alert.get(name) is not None}
    return {**(alert.get("labels") or {}), **own}


@dataclass(frozen=True)
class Matchers:
    wanted: Mapping[str, str] = field(default_factory=dict)  # label -> value

    @classmethod
    def of(cls, wanted: Mapping[str, Any]) -> Matchers:
        """From a mapping that may hold unset (None) entries, which match anything."""
        return cls({name: str(value) for name, value in wanted.items() if value is not None})

    def __bool__(self) -> bool:
        return bool(self.wanted)

    def matches(self, alert: Mapping[str, Any]) -> bool:
        labels = labels_of(alert)
        return all(labels.get(name) == value for name, value in self.wanted.items())

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(name) == value for name, value in self.wanted.items())

    def query(self) -> dict[str, str]:
        """The same test as a MongoDB query on alerts."""
        return {(name if name in TOP_LEVEL else f"labels.{name}"): value for name, value in self.wanted.items()}
