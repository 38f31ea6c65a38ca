"""The stack on a 3-node RabbitMQ cluster started by the test: 3 rules workers, 2 notify
instances; while events are posted, the node the rules workers are connected to is killed
(SIGKILL of its Erlang VM), then one rules worker. Nothing accepted is lost, no alert is stored
twice, and the alerts are those of a backtest of the same file."""

from __future__ import annotations

import httpx
import pytest
from conftest import wait_for
from histories import chunks, post, write
from rabbit_cluster import RabbitCluster, available
from test_partitions import PARTITIONS, all_owned_once, assert_as_backtested, two_weeks

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

    live = assert_as_backtested(alive, ingest, notify, path, events, mongo_url, namespace, cluster.url(1))
    assert httpx.get(f"{second_notify.url}/readyz").status_code == 200
    print(f"\ncluster: {len(events)} events, {len(live)} alerts, node 2 and one worker killed")
