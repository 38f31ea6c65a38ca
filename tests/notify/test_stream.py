"""The live alert stream (SSE with Last-Event-ID resume) and the `alerts` topic exchange."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import httpx
import pymongo
from conftest import wait_for
from factories import alert_signal, signal
from helpers import drain, publish

from services.common.topology import Topology


def read_events(
    url: str, count: int, headers: dict | None = None, params: dict | None = None, timeout: float = 20.0
) -> list[dict]:
    """Open the stream, take `count` alert events, close it."""
    found: list[dict] = []
    with httpx.stream("GET", url, headers=headers, params=params, timeout=httpx.Timeout(timeout)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict = {}
        for line in response.iter_lines():
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and "data" in event:
                found.append(event)
                event = {}
                if len(found) == count:
                    return found
    return found


async def _bind(amqp_url: str, exchange: str, queue: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=False, auto_delete=False)
        await declared.bind(exchange, routing_key="#")


def test_stream_resumes_after_reconnect_and_restart(services, amqp_url, namespace):
    (notify,) = services("notify")
    asyncio.run(_bind(amqp_url, Topology(namespace).alerts.name, f"{namespace}.test-subscriber"))
    url = f"{notify.url}/v1/alerts/stream"
    exchange = Topology(namespace).alert_signals.name

    publish(amqp_url, exchange, "k", signal("S1", 1), signal("S2", 1))
    received = read_events(url, 2, params={"last_event_id": 0})  # this test's database starts empty
    assert [(e["data"]["change"], e["data"]["alert"]["alert_id"]) for e in received] == [("opened", "S1"), ("opened", "S2")]
    last_seen = received[-1]["id"]

    # while no dashboard is connected: an update, a resolve, and a notify restart
    publish(amqp_url, exchange, "k", signal("S1", 2), signal("S2", 1, "resolved"))
    wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts/S2").json()["status"] == "resolved")
    notify.stop()
    (notify,) = services("notify")
    missed = read_events(f"{notify.url}/v1/alerts/stream", 2, headers={"Last-Event-ID": str(last_seen)})
    assert [(e["data"]["change"], e["data"]["alert"]["alert_id"]) for e in missed] == [("updated", "S1"), ("resolved", "S2")], (
        last_seen,
        missed,
    )
    assert [e["id"] for e in missed] == [last_seen + 1, last_seen + 2]

    # filters apply to the stream as to the list
    only = read_events(f"{notify.url}/v1/alerts/stream", 1, params={"dealer_id": "D-S2", "last_event_id": 0})
    assert {e["data"]["alert"]["dealer_id"] for e in only} == {"D-S2"}

    # every change also went to the alerts exchange, keyed severity.rule.dealer
    messages: list = []
    wait_for(lambda: messages.extend(drain(amqp_url, f"{namespace}.test-subscriber")) or len(messages) >= 4, seconds=20)
    bodies = [json.loads(m.body) for m in messages]
    assert [(b["change"], b["alert"]["alert_id"]) for b in bodies] == [
        ("opened", "S1"),
        ("opened", "S2"),
        ("updated", "S1"),
        ("resolved", "S2"),
    ]
    assert [m.routing_key for m in messages][:2] == ["warning.sales-drop.D-S1", "warning.sales-drop.D-S2"]


def test_two_instances_publish_each_change_once_and_the_other_takes_over_from_a_killed_one(
    services, amqp_url, mongo_url, namespace
):
    first, second = services("notify", "notify")
    asyncio.run(_bind(amqp_url, Topology(namespace).alerts.name, f"{namespace}.test-subscriber"))
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", *[signal(f"T{n}", 1) for n in range(300)])
    messages: list = []
    wait_for(lambda: messages.extend(drain(amqp_url, f"{namespace}.test-subscriber", 1000)) or len(messages) >= 300, seconds=60)
    # a marker after them: once its change is out, a second publisher's copies of the 300 (earlier
    # in the same change log) would be out too
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("T-marker", 1))
    wait_for(lambda: messages.extend(drain(amqp_url, f"{namespace}.test-subscriber", 1000)) or len(messages) >= 301, seconds=20)
    messages.extend(drain(amqp_url, f"{namespace}.test-subscriber", 1000))
    ids = [json.loads(m.body)["alert"]["alert_id"] for m in messages]
    assert sorted(ids) == sorted([*(f"T{n}" for n in range(300)), "T-marker"])

    # the instance holding the publisher's lease is killed (no release): the other one publishes
    # once the lease has run out
    with pymongo.MongoClient(mongo_url) as client:
        holder = client[namespace]["leases"].find_one({"_id": "alerts-exchange"})["holder"]
    held_by = {str(n.process.pid): n for n in (first, second)}[holder.split(":")[1]]
    held_by.stop(kill=True)
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("T-after", 1))
    wait_for(lambda: messages.extend(drain(amqp_url, f"{namespace}.test-subscriber")) or len(messages) == 302, seconds=30)
    assert json.loads(messages[-1].body)["alert"]["alert_id"] == "T-after"


def test_a_change_a_stopped_writer_left_unlogged_reaches_the_stream(services, service_env, namespace):
    """The alert write succeeded, the process died before its change-log entry: another notify
    writes the entry, so the stream and the exchange still hear of it."""
    from services.common.settings import Settings
    from services.common.timeutil import utcnow
    from services.notify import alert as alerts
    from services.notify.store import AlertStore

    async def write_then_die() -> None:
        settings = Settings(mongo_url=service_env["DEALERWATCH_MONGO_URL"], mongo_db=namespace, namespace=namespace)
        store = AlertStore(settings)
        await store.ensure_indexes()

        async def crash(*args):
            raise SystemExit("killed between the alert write and its change-log entry")

        store.changes.record = crash
        try:
            await store.insert(alerts.new_document(alert_signal("U1", 1), [], utcnow(), None, []), "opened")
        except SystemExit:
            pass
        store.close()

    asyncio.run(write_then_die())
    (notify,) = services("notify")
    assert httpx.get(f"{notify.url}/v1/alerts/U1").json()["status"] == "open"

    def stream_from_start():
        try:
            return read_events(f"{notify.url}/v1/alerts/stream", 1, params={"last_event_id": 0}, timeout=2.0)
        except httpx.ReadTimeout:
            return None

    logged = wait_for(stream_from_start, seconds=20)
    assert [(e["data"]["change"], e["data"]["alert"]["alert_id"]) for e in logged] == [("opened", "U1")]


def test_many_dashboards_each_receive_every_change_in_order(services, amqp_url, namespace):
    (notify,) = services("notify")
    url = f"{notify.url}/v1/alerts/stream"

    async def dashboard(client: httpx.AsyncClient, count: int) -> list[tuple[int, str]]:
        seen = []
        async with client.stream("GET", url, params={"last_event_id": 0}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:])["alert"]["alert_id"])
                    if len(seen) == count:
                        return seen
        return seen

    async def watch() -> list[list[str]]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=httpx.Limits(max_connections=50)) as client:
            watchers = [asyncio.create_task(dashboard(client, 12)) for _ in range(25)]
            await asyncio.sleep(1.0)  # all connected and waiting
            await asyncio.to_thread(
                publish, amqp_url, Topology(namespace).alert_signals.name, "k", *[signal(f"F{n}", 1) for n in range(6)]
            )
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                publish, amqp_url, Topology(namespace).alert_signals.name, "k", *[signal(f"F{n}", 2) for n in range(6)]
            )
            return await asyncio.wait_for(asyncio.gather(*watchers), 30)

    received = asyncio.run(watch())
    expected = [f"F{n}" for n in range(6)] * 2
    assert all(seen == expected for seen in received), received[0]


def test_a_stream_resuming_from_far_back_is_told_to_list_again_and_reads_no_more_than_a_page(services, amqp_url, namespace):
    """600 changes behind (last_event_id=0 on a busy stack): not 30 days of changes read for the
    connection, but a `reset` naming the position to list from, then live changes."""
    from services.notify.stream import RESUME_PAGE

    (notify,) = services("notify")
    exchange = Topology(namespace).alert_signals.name
    count = RESUME_PAGE + 100
    publish(amqp_url, exchange, "k", *(signal(f"F{n}", 1) for n in range(count)))
    wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts/counts").json()["total"] == count, seconds=30)
    position = httpx.get(f"{notify.url}/v1/alerts", params={"limit": 1}).json()["stream_position"]
    assert position >= count
    url = f"{notify.url}/v1/alerts/stream"
    # the stream's feed reads the change log a moment after the list: once it has the newest
    # change, the far-back stream below is 600 behind it (earlier it may be under a page behind)
    assert [e["id"] for e in read_events(url, 1, params={"last_event_id": position - 1})] == [position]
    with httpx.stream("GET", url, params={"last_event_id": 0}, timeout=httpx.Timeout(20.0)) as response:
        lines = response.iter_lines()
        block: list[str] = []
        for line in lines:
            if line == "" and block:
                break
            if line and not line.startswith("retry"):
                block.append(line)
        # the reset names where the stream stands: the list's position, or a little before it when
        # the stream's feed had not read the newest changes yet (they follow as changes)
        reset_at = int(block[0].removeprefix("id: "))
        assert block[1] == "event: reset" and RESUME_PAGE < reset_at <= position
        assert json.loads(block[2].removeprefix("data: ")) == {"missed": reset_at, "stream_position": reset_at}
        publish(amqp_url, exchange, "k", signal("F-live", 1))
        live: dict = {}
        for line in lines:
            if line.startswith("id: "):
                live["id"] = int(line[4:])
            elif line.startswith("data: "):
                live["data"] = json.loads(line[6:])
                if live["data"]["alert"]["alert_id"] == "F-live":
                    break
                assert reset_at < live["id"] <= position  # only what came after the reset
        assert live["id"] == position + 1 and live["data"]["alert"]["alert_id"] == "F-live"
    near = read_events(url, 3, params={"last_event_id": position - 2})  # a page behind or less: every change
    assert [e["id"] for e in near] == [position - 1, position, position + 1]
