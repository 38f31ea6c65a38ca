"""Causes that can be counted (#23) and the report's percentiles, without a broker or database."""

from __future__ import annotations

import pytest

from services.common.percentiles import percentile
from services.notify import routes_file
from services.notify.causes import DEFAULT_CAUSES, OTHER, UnknownCause, resolution

ROUTES = "version: 1\nreceivers:\n  ops: {webhook: {url: 'http://127.0.0.1:9/'}}\nroute: {receiver: ops}\n"


def test_a_cause_from_the_list_is_kept_with_its_note_and_words_without_a_note_are_other():
    assert resolution("stock-out", "restocked", DEFAULT_CAUSES) == ("stock-out", "restocked")
    assert resolution("stock-out", None, DEFAULT_CAUSES) == ("stock-out", None)
    assert resolution("called the dealer", None, DEFAULT_CAUSES) == (OTHER, "called the dealer")  # the shape before #23
    with pytest.raises(UnknownCause, match=r"unknown cause 'weather': use one of stock-out, .*, other"):
        resolution("weather", "rain", DEFAULT_CAUSES)


def test_the_routes_file_names_causes_and_assignees_and_its_mistakes_have_lines():
    spec = routes_file.loads(
        ROUTES + "assign:\n  - {match: {region: north}, to: li.na}\n  - {match: {rule_id: sales-drop}, to: wang}\n"
    ).spec
    assert routes_file.assignee_for(spec, {"region": "north", "rule_id": "sales-drop"}) == "li.na"  # the first that matches
    assert routes_file.assignee_for(spec, {"region": "south", "rule_id": "sales-drop"}) == "wang"
    assert routes_file.assignee_for(spec, {"region": "south"}) is None
    assert [c.id for c in routes_file.causes_of(spec)] == [c.id for c in DEFAULT_CAUSES]
    own = routes_file.loads(ROUTES + "causes:\n  - {id: flood, en: Flood, zh: 洪水}\n").spec
    assert [c.id for c in routes_file.causes_of(own)] == ["flood", OTHER]
    with pytest.raises(routes_file.RoutesError, match="causes listed twice: flood"):
        routes_file.loads(ROUTES + "causes:\n  - {id: flood, en: a, zh: b}\n  - {id: flood, en: c, zh: d}\n")
    with pytest.raises(routes_file.RoutesError) as caught:
        routes_file.loads(ROUTES + "causes:\n  - {id: Flood Damage, en: a, zh: b}\n", "r.yaml")
    assert str(caught.value).startswith("r.yaml:6:")


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.9, 7.0),
        ([5.0, 1.0, 4.0, 2.0, 3.0], 0.5, 3.0),  # the third of five: not the second
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 0.9, 4.0),
        ([1.0] * 9 + [50.0], 0.9, 1.0),
    ],
)
def test_percentiles_are_nearest_rank(values, p, expected):
    assert percentile(values, p) == expected
