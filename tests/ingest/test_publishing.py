"""202 only after the broker confirmed every event: a broker that does not answer, refuses (nack)
or cannot route the batch gets the client a 503, and the retry once it is well is accepted and
counted once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from urllib.parse import urlsplit

import aio_pika
import httpx
import pytest
from conftest import free_port, wait_for
from factories import now, sale
from helpers import TEST_PARTITIONS, TcpProxy, bind, declared, drain_rules, unbind

from services.common.partitions import partition_key, partition_of


def post(ingest, events) -> httpx.Response:
    return httpx.post(f"{ingest.url}/v1/events", json=events, timeout=15)


def topology_declared(amqp_url: str, namespace: str) -> None:
    """A service declares its exchanges and queues just after it answers /readyz; the dead-letter
    queue is the last. (A proxy paused or an exchange deleted before then breaks the declaring.)"""
    wait_for(lambda: declared(amqp_url, f"{namespace}.dead-letter"))


def refused(response: httpx.Response) -> bool:
    return response.status_code == 503 and "did not confirm" in response.json()["error"]


def proxied_ingest(services, amqp_url: str, namespace: str, publish_timeout: str):
    """An ingest that reaches the broker through a TcpProxy the test can pause and cut."""
    target = urlsplit(amqp_url)
    proxy = TcpProxy(free_port(), (target.hostname, target.port or 5672)).start()
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    (ingest,) = services("ingest", env={"DEALERWATCH_AMQP_URL": url, "DEALERWATCH_PUBLISH_TIMEOUT_SECONDS": publish_timeout})
    topology_declared(amqp_url, namespace)
    return ingest, proxy


def test_no_confirm_in_time_is_a_503_and_the_retry_is_counted_once(services, amqp_url, namespace):
    ingest, proxy = proxied_ingest(services, amqp_url, namespace, publish_timeout="1")
    event = sale("D-1", now())
    try:
        proxy.pause()  # the broker takes the message but its confirm does not come back
        response = post(ingest, [event])
        assert refused(response), response.text
        assert response.headers["retry-after"]
    finally:
        proxy.resume()
    wait_for(lambda: post(ingest, [event]).status_code == 202)
    # the broker may hold the unconfirmed copy as well: the retry has the same event_id. A marker
    # event of the same dealer (same queue, behind both copies) shows when both were taken.
    assert post(ingest, [sale("D-1", now())]).status_code == 202
    (rules,) = services("rules")
    wait_for(lambda: counted(rules, "D-1") >= 2)
    assert counted(rules, "D-1") == 2
    proxy.close()


def counted(rules, dealer: str) -> int:
    response = httpx.get(f"{rules.url}/v1/dealers/{dealer}")
    return response.json()["events_counted"] if response.status_code == 200 else 0


@pytest.fixture
def queue_limit(amqp_url, namespace):
    """limit(n): a policy limiting this namespace's queues to n messages, over which the broker
    nacks a publish (the queues' own overflow setting is reject-publish)."""
    name = f"{namespace}-limit"

    def limit(messages: int) -> None:
        topology_declared(amqp_url, namespace)
        definition = json.dumps({"max-length": messages, "overflow": "reject-publish"})
        pattern = f"^{namespace}\\."
        command = ["rabbitmqctl", "-q", "set_policy", "--apply-to", "queues", "--priority", "9", name, pattern, definition]
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        wait_for(
            lambda: len(applied(namespace, name)) == TEST_PARTITIONS + 4
        )  # rules, notify, dealer file, archive, dead letters

    yield limit
    subprocess.run(["rabbitmqctl", "-q", "clear_policy", name], check=False, capture_output=True, timeout=30)


def applied(namespace: str, policy: str) -> set[str]:
    listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "policy"], capture_output=True, text=True)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.startswith(namespace) and policy in line}


def test_a_nacked_batch_is_a_503_and_accepted_once_the_broker_takes_it(services, amqp_url, namespace, queue_limit):
    (ingest,) = services("ingest")
    filler, events = sale("D-1", now()), [sale("D-1", now()), sale("D-1", now())]
    queue_limit(0)
    # a quorum queue refuses once it is over its limit: the first message in may still be taken
    post(ingest, [filler])
    response = post(ingest, events)
    assert refused(response), response.text
    # (a queue that once refused keeps refusing when the policy is cleared, on 3.x: raised instead)
    queue_limit(1_000_000)
    wait_for(lambda: post(ingest, events).status_code == 202)  # as a client retries after a 503
    ids = {json.loads(m.body)["event_id"] for m in drain_rules(amqp_url, namespace)}
    assert {e["event_id"] for e in events} <= ids <= {e["event_id"] for e in [filler, *events]}


def test_an_unroutable_event_is_a_503_not_a_202(services, amqp_url, namespace):
    (ingest,) = services("ingest")
    event = sale("D-1", now())
    partition = partition_key(partition_of("D-1", TEST_PARTITIONS))
    rules_queue, file_queue = f"{namespace}.rules.{partition}", f"{namespace}.notify.dealer-file"
    topology_declared(amqp_url, namespace)
    unbind(amqp_url, f"{namespace}.events", rules_queue, f"{partition}.#")
    unbind(amqp_url, f"{namespace}.events", file_queue, "*.sale.#")
    unbind(amqp_url, f"{namespace}.events", f"{namespace}.notify.archive", "#")
    response = post(ingest, [event])
    assert refused(response), response.text
    bind(amqp_url, f"{namespace}.events", rules_queue, f"{partition}.#", ours=False)
    assert post(ingest, [event]).status_code == 202
    assert [json.loads(m.body)["event_id"] for m in drain_rules(amqp_url, namespace)] == [event["event_id"]]


def test_a_publish_whose_channel_the_broker_closes_is_a_503(services, amqp_url, namespace):
    """Someone deleted the events exchange under a running ingest: the broker closes the channel
    of the batch's first publish (404), which cuts the others' confirms short (aiormq cancels
    them). The client is told to retry, never told 202 nor left with a broken connection."""
    (ingest,) = services("ingest")
    topology_declared(amqp_url, namespace)
    asyncio.run(_delete_exchange(amqp_url, f"{namespace}.events"))
    response = post(ingest, [sale(f"D-{n}", now()) for n in range(50)])
    assert refused(response), response.text


async def _delete_exchange(amqp_url: str, name: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(name)


def test_a_connection_lost_while_confirms_are_awaited_is_a_503(services, amqp_url, namespace):
    ingest, proxy = proxied_ingest(services, amqp_url, namespace, publish_timeout="10")
    proxy.pause()
    answer: list[httpx.Response] = []
    posting = threading.Thread(target=lambda: answer.append(post(ingest, [sale(f"D-{n}", now()) for n in range(50)])))
    posting.start()
    wait_for(lambda: proxy.sent_since_pause > 5_000)  # the 50 publishes went out; their confirms are held
    proxy.close()  # the connection is cut while the confirms are awaited
    posting.join(15)
    assert refused(answer[0]), answer[0].text
