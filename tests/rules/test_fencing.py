"""The fence against a worker that was frozen while its partition moved on, on the real database
protocol: a write with an older epoch changes nothing, and says which partition it lost."""

from __future__ import annotations

import asyncio

from services.common.settings import Settings
from services.rules.state import DealerState
from services.rules.store import StateStore, encode


def test_writes_of_an_older_epoch_are_refused(mongo_url, namespace):
    async def scenario() -> tuple:
        store = StateStore(Settings(mongo_url=mongo_url, mongo_db=namespace, partitions=4))
        try:
            frozen = await store.take_partition(2, "frozen")
            successor = await store.take_partition(2, "successor")
            newer = DealerState("D-1", events=5)
            refused, fenced = await store.save([encode(newer, 2, successor)], {2: {"epoch": successor, "at": 1.0}}, 60.0)
            assert (refused, fenced) == ({}, set())
            stale = DealerState("D-1", events=3)
            outcome = await store.save([encode(stale, 2, frozen)], {2: {"epoch": frozen, "at": 0.5}}, 60.0)
            kept = await store.load("D-1")
            clock = await store.load_clock(2)
            epochs = await store.epochs([2])
            return frozen, successor, outcome, kept.events, clock["at"], epochs
        finally:
            store.close()

    frozen, successor, (refused, fenced), events, clock_at, epochs = asyncio.run(scenario())
    assert successor == frozen + 1 and epochs == {2: successor}
    assert fenced == {2} and refused == {}  # the partition is reported lost, not the dealer unstorable
    assert events == 5 and clock_at == 1.0  # the successor's state and clock stand


def test_documents_from_before_partitions_are_given_theirs_and_stay_writable(mongo_url, namespace):
    """A dealer stored by the single rules process of an earlier version (no partition, no epoch)
    is found by its partition's next owner, which can write it."""
    import hashlib

    import pymongo

    with pymongo.MongoClient(mongo_url) as client:
        client[namespace]["rules_dealers"].insert_one({"_id": "OLD-1", "format": 5, "events": 7, "seen": [[], []]})

    async def scenario() -> tuple:
        store = StateStore(Settings(mongo_url=mongo_url, mongo_db=namespace, partitions=8))
        try:
            assert await store.assign_partitions() == 1
            assert await store.assign_partitions() == 0  # idempotent
            home = int.from_bytes(hashlib.blake2b(b"OLD-1", digest_size=8).digest(), "big") % 8
            loaded = await store.load_partition(home)
            epoch = await store.take_partition(home, "worker")
            state = loaded["OLD-1"]
            found = state.events
            state.events += 1
            outcome = await store.save([encode(state, home, epoch)], {}, 60.0)
            return found, outcome, (await store.load("OLD-1")).events
        finally:
            store.close()

    loaded_events, outcome, stored_events = asyncio.run(scenario())
    assert loaded_events == 7 and outcome == ({}, set()) and stored_events == 8


def _successor_takes(mongo_url: str, namespace: str, dealer: str) -> None:
    """Another worker takes the dealer's partition (its epoch goes up)."""
    from services.common.partitions import partition_of

    async def take() -> None:
        store = StateStore(Settings(mongo_url=mongo_url, mongo_db=namespace, partitions=4))
        try:
            await store.take_partition(partition_of(dealer, 4), "successor")
        finally:
            store.close()

    asyncio.run(take())


def _fenced_worker(services, amqp_url, mongo_url, namespace, *hold: str):
    """A rules worker on a database proxy that counted one event of D-1, then is held at the
    first request holding the words `hold` while judging a second; a successor takes D-1's
    partition meanwhile, then the request goes on. Returns the worker and the proxy."""
    from urllib.parse import urlsplit

    from conftest import free_port, wait_for
    from factories import now, sale
    from helpers import TcpProxy, events_counted, publish_events, unacked

    database = urlsplit(mongo_url)
    proxy = TcpProxy(free_port(), (database.hostname, database.port)).start()
    (rules,) = services("rules", env={"DEALERWATCH_MONGO_URL": mongo_url.replace(f":{database.port}/", f":{proxy.port}/")})
    publish_events(amqp_url, namespace, sale("D-1", now()))
    wait_for(lambda: events_counted(mongo_url, namespace, "D-1") == 1)
    wait_for(lambda: unacked(namespace) == 0)  # that flush is over: the next request is the next flush's
    held = proxy.hold_when(*hold)
    publish_events(amqp_url, namespace, sale("D-1", now()))
    wait_for(held.is_set)
    _successor_takes(mongo_url, namespace, "D-1")
    proxy.release_writes()
    return rules, proxy


def test_a_worker_fenced_off_during_its_save_acks_nothing_and_the_event_is_counted_by_the_next_owner(
    services, amqp_url, mongo_url, namespace
):
    """Between a flush's epoch check and its write another worker took the partition: the write is
    refused, the worker drops the partition and acks none of the batch; whoever owns it next (here
    the same worker, taking it again) is delivered the event and counts it."""
    from conftest import wait_for
    from helpers import events_counted

    rules, proxy = _fenced_worker(services, amqp_url, mongo_url, namespace, "update", "rules_dealers")
    wait_for(lambda: "fenced off" in rules.log())
    wait_for(lambda: events_counted(mongo_url, namespace, "D-1") == 2, seconds=60)
    rules.stop()  # while its database is still reachable: a stop then takes a moment, not 10 s
    proxy.close()


def test_a_worker_that_finds_its_partition_taken_before_it_publishes_lets_it_go(services, amqp_url, mongo_url, namespace):
    """The flush's epoch check finds the partition taken: nothing of it is published, stored or
    acked, and the worker lets the partition go (a single active consumer that kept it would
    stall it for the new owner); its next owner counts the event."""
    from conftest import wait_for
    from helpers import events_counted

    rules, proxy = _fenced_worker(services, amqp_url, mongo_url, namespace, "find", "rules_partitions", "$in")
    wait_for(lambda: "taken over by another worker" in rules.log())
    wait_for(lambda: events_counted(mongo_url, namespace, "D-1") == 2, seconds=60)
    rules.stop()  # while its database is still reachable: a stop then takes a moment, not 10 s
    proxy.close()
