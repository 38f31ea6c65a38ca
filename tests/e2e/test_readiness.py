"""/readyz tells the truth: a service whose consumer or flush is stuck is not ready and says why,
and is ready again once the cause is gone (real broker, a MongoDB-protocol server stopped and
started again under the running service)."""

from __future__ import annotations

import json

import httpx
import pymongo
import pytest
from conftest import free_port, wait_for
from factories import now, over_budget, sale
from helpers import event_key, publish

from services import devstack
from services.common.topology import Topology


class Database:
    """A MongoDB-protocol server of the test's own, stopped and started on the same port and data."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.storage = str(tmp_path / "db")
        self.url = f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"
        self.process = None

    def start(self) -> Database:
        self.process = devstack.start_mongo(self.port, self.storage)
        return self

    def stop(self) -> None:
        devstack.stop(self.process)


@pytest.fixture
def database(tmp_path):
    db = Database(tmp_path).start()
    yield db
    db.stop()


def readiness(service) -> tuple[int, dict]:
    response = httpx.get(f"{service.url}/readyz", timeout=10)
    return response.status_code, response.json()


def test_rules_with_a_stuck_flush_is_not_ready_and_says_why(database, services, amqp_url, namespace):
    (rules,) = services("rules", env={"DEALERWATCH_MONGO_URL": database.url})
    at = now()
    publish(amqp_url, Topology(namespace).events.name, event_key("sale", "D-1"), json.dumps(sale("D-1", at)).encode())
    wait_for(lambda: httpx.get(f"{rules.url}/v1/dealers/D-1").status_code == 200)
    database.stop()
    publish(amqp_url, Topology(namespace).events.name, event_key("sale", "D-1"), json.dumps(sale("D-1", at)).encode())
    status, body = wait_for(lambda: (r := readiness(rules))[0] == 503 and r[1]["problems"] and r, 40)
    assert any(p.startswith("flush failing for") for p in body["problems"]), body
    database.start()
    wait_for(lambda: readiness(rules)[0] == 200, 40)
    with pymongo.MongoClient(database.url) as client:
        assert client[namespace]["rules_dealers"].find_one({"_id": "D-1"})["events"] == 2  # stored once it could be


def test_notify_with_a_stuck_consumer_is_not_ready_and_says_why(database, services, amqp_url, namespace):
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_MONGO_URL": database.url})
    database.stop()
    for event in over_budget("D-1", now(), "P-1"):
        publish(amqp_url, Topology(namespace).events.name, event_key("promotion.planned", "D-1"), json.dumps(event).encode())
    status, body = wait_for(lambda: (r := readiness(notify))[0] == 503 and r[1]["problems"] and r, 40)
    assert any(p.startswith("alert signals failing for") for p in body["problems"]), body
    database.start()
    wait_for(lambda: readiness(notify)[0] == 200, 40)
    wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts").json()["items"], 30)
