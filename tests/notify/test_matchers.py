"""One matcher for silences, the API's filters, the live stream and routes: its labels, its
test on an alert, and the same test as a MongoDB query, which must agree with it (checked on
the MongoDB-protocol server with random alerts and matchers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from motor.motor_asyncio import AsyncIOMotorClient

from services.notify.api.filters import AlertFilter
from services.notify.matchers import Matchers, labels_of
from services.notify.routes_file import loads, receivers_for


def test_an_alerts_own_fields_win_over_its_rules_labels():
    alert = {"severity": "critical", "dealer_id": "D-1", "labels": {"severity": "info", "region": "north"}}
    assert labels_of(alert) == {"severity": "critical", "dealer_id": "D-1", "region": "north"}


def test_unset_matchers_match_everything_and_values_compare_as_text():
    assert not Matchers.of({"region": None}) and Matchers.of({"region": None}).matches({"labels": {}})
    assert Matchers.of({"count": 3}).matches_labels({"count": "3"})
    north = Matchers.of({"region": "north", "severity": "warning"})
    assert north.matches({"severity": "warning", "labels": {"region": "north", "team": "a"}})
    assert not north.matches({"severity": "warning", "labels": {"region": "south"}})
    assert north.query() == {"labels.region": "north", "severity": "warning"}


def test_routes_match_with_the_same_matchers():
    routes = loads(
        "version: 1\nreceivers: {ops: {webhook: {url: 'http://o'}}, north: {webhook: {url: 'http://n'}}}\n"
        "route:\n  receiver: ops\n  routes:\n    - match: {region: north, severity: critical}\n      receiver: north\n"
    ).spec
    signal = {"severity": "critical", "rule_id": "sales-drop", "dealer_id": "D-1", "labels": {"region": "north"}}
    assert receivers_for(routes, labels_of(signal)) == ["north"]
    assert receivers_for(routes, labels_of({**signal, "severity": "warning"})) == ["ops"]


WORDS = st.sampled_from(["north", "south", "D-1", "D-2", "sales-drop", "visit-overdue", "warning", "critical"])
STATUSES = st.sampled_from(["open", "acknowledged", "resolved"])
AT = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
alerts_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "severity": st.sampled_from(["info", "warning", "critical"]),
            "rule_id": st.sampled_from(["sales-drop", "visit-overdue"]),
            "dealer_id": st.sampled_from(["D-1", "D-2"]),
            "status": STATUSES,
            "labels": st.dictionaries(st.sampled_from(["region", "team", "severity"]), WORDS, max_size=3),
            "first_seen_at": st.integers(0, 5).map(lambda d: AT + dt.timedelta(days=d)),
        }
    ),
    max_size=12,
)
filters_strategy = st.builds(
    AlertFilter,
    dealer_id=st.none() | st.sampled_from(["D-1", "D-2"]),
    rule_id=st.none() | st.sampled_from(["sales-drop", "visit-overdue"]),
    severity=st.none() | st.sampled_from(["info", "warning", "critical"]),
    region=st.none() | WORDS,
    statuses=st.lists(STATUSES, max_size=2, unique=True).map(tuple),
    since=st.none() | st.integers(0, 5).map(lambda d: AT + dt.timedelta(days=d)),
)


@pytest.fixture
def collection(mongo_url):
    loop = asyncio.new_event_loop()
    client = AsyncIOMotorClient(mongo_url, tz_aware=True, io_loop=loop)
    yield loop, client[f"m{uuid.uuid4().hex[:8]}"]["alerts"]
    client.close()
    loop.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(alerts=alerts_strategy, where=filters_strategy, labels=st.dictionaries(st.sampled_from(["region", "team"]), WORDS))
def test_matching_in_python_and_in_mongodb_agree(collection, alerts, where, labels):
    """The stream filters in Python what the list asks MongoDB for; a silence mutes the open
    alerts its query finds and new ones its test matches. Any difference is a missed alert."""
    loop, alerts_collection = collection
    documents = [{**alert, "_id": str(n)} for n, alert in enumerate(alerts)]

    async def found(query: dict) -> set[str]:
        return {doc["_id"] async for doc in alerts_collection.find(query, {"_id": 1})}

    async def check() -> None:
        await alerts_collection.delete_many({})
        if documents:
            await alerts_collection.insert_many(documents)
        assert await found(where.query()) == {d["_id"] for d in documents if where.matches(d)}
        label_matchers = Matchers.of(labels)
        assert await found(label_matchers.query()) == {d["_id"] for d in documents if label_matchers.matches(d)}

    loop.run_until_complete(check())
