"""The stack on a 3-node RabbitMQ cluster started by the test: 3 rules workers, 2 notify
instances; while events are posted, the node the rules workers are connected to is killed
(SIGKILL of its Erlang VM), then one rules worker. Nothing accepted is lost, no alert is stored
twice, and the alerts are those of a backtest of the same file."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import httpx
import pymongo
import pytest
from conftest import wait_for
from helpers import queue_depth
from histories import alert_key, backtest_opened, chunks, post, stored_alerts, write
from rabbit_cluster import RabbitCluster, available
from test_partitions import PARTITIONS, all_owned_once, settle_every_partition, two_weeks

from services.common.topology import Topology

pytestmark = pytest.mark.skipif(available() is not None, reason=available() or "")


@pytest.fixture(scope="module")
def cluster():
    started = RabbitCluster().start()
    yield started
    started.stop()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_broker_node_and_a_worker_killed_while_events_arrive(cluster, services, tmp_path, mongo_url, namespace):
    events = two_weeks(dealers=100)
    path = write(tmp_path / "history.ndjson", events)
    parts = chunks(events, len(events) // 3 + 1)
    env = {"DEALERWATCH_PARTITIONS": str(PARTITIONS), "DEALERWATCH_CLOCK_HOLD_SECONDS": "45"}
    # ingest and notify start on node 1 (one notify on node 3), the rules workers on node 2
    (ingest,) = services("ingest", env={**env, "DEALERWATCH_AMQP_URL": cluster.urls(1)})
    notify, second_notify = (services("notify", env={**env, "DEALERWATCH_AMQP_URL": cluster.urls(first)})[0] for first in (1, 3))
    workers = services("rules", "rules", "rules", env={**env, "DEALERWATCH_AMQP_URL": cluster.urls(2)})
    wait_for(lambda: all_owned_once(workers), 30, 0.2)

    for batch in chunks(parts[0], 300):
        post(ingest, batch)
    cluster.kill(2)  # the rules workers' node
    for batch in chunks(parts[1], 300):
        post(ingest, batch)
    killed, *alive = workers
    killed.stop(kill=True)
    wait_for(lambda: all_owned_once(alive), 40, 0.2)
    for batch in chunks(parts[2], 300):
        post(ingest, batch)

    wait_for(lambda: sum(httpx.get(f"{w.url}/clock").json()["dealers_held"] for w in alive) == 0, 120)
    before = dt.datetime.now(dt.UTC)
    settle_every_partition(ingest, notify, 300)
    alerts = [a for a in stored_alerts(notify) if not a["dealer_id"].startswith("marker")]
    keys = [alert_key(a) for a in alerts]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    live = set(keys)
    lower, upper = backtest_opened(path, before), backtest_opened(path, dt.datetime.now(dt.UTC))
    assert lower <= live, f"missing: {sorted(lower - live)[:5]}"
    assert live <= upper, f"not raised by the backtest: {sorted(live - upper)[:5]}"
    with pymongo.MongoClient(mongo_url) as client:
        counted = {d["_id"]: d["events"] for d in client[namespace]["rules_dealers"].find({}, {"events": 1})}
    posted = Counter(e["dealer_id"] for e in events)
    assert {d: counted.get(d) for d in posted} == dict(posted)  # every accepted event, once
    assert queue_depth(cluster.url(1), Topology(namespace).dead_letter_queue.name) == 0
    assert httpx.get(f"{second_notify.url}/readyz").status_code == 200
    print(f"\ncluster: {len(events)} events, {len(live)} alerts, node 2 and one worker killed")
