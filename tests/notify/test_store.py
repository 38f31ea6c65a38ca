"""The alerts collection in-process on the MongoDB-protocol server: the lifecycle's conditions
as the store applies them, one change-log entry per write (also for a writer that stopped
between the two), keyset pages, the live feed, the publisher's lease and the outbox's claims."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from factories import alert_signal

from services.common.settings import Settings
from services.common.timeutil import utcnow
from services.notify import alert as alerts
from services.notify.feed import ChangeFeed
from services.notify.leader import Lease
from services.notify.outbox import Outbox
from services.notify.silences import NewSilence, SilenceMatchers, SilenceStore, mute_open_alerts
from services.notify.store import AlertStore


@pytest.fixture
async def store(mongo_url):
    store = AlertStore(Settings(mongo_url=mongo_url, mongo_db=f"s{uuid.uuid4().hex[:10]}"))
    await store.ensure_indexes()
    yield store
    store.close()


OPENED = dt.datetime(2026, 3, 1, 12, 0, 7, tzinfo=dt.UTC)


async def opened(store: AlertStore, alert_id: str, routes=(), **changes) -> None:
    document = alerts.new_document(alert_signal(alert_id, 1, **changes), list(routes), OPENED, None, [])
    assert await store.insert(document, "opened")


async def test_people_act_on_an_alert_only_from_the_states_their_action_starts_from(store):
    await opened(
        store, "A1", [alerts.route_plan("ops", "t", repeat_seconds=60, escalate_after_seconds=60, escalate_to=("duty",))]
    )
    now = utcnow()
    acked = await store.change("A1", *alerts.transition("acknowledged", "li.na", "on it", now), "acknowledged")
    assert acked["status"] == "acknowledged" and "escalation_due_at" not in acked
    assert await store.change("A1", *alerts.transition("acknowledged", "li.na", None, now), "acknowledged") is None
    resolved = await store.change("A1", *alerts.transition("resolved", "wang", "restocked", now, "stock-out"), "resolved")
    assert resolved["status"] == "resolved" and "reminder_due_at" not in resolved
    assert [h["action"] for h in resolved["history"]] == ["opened", "acknowledged", "resolved"]
    assert await store.change("A1", *alerts.transition("resolved", "wang", "again", now, "other"), "resolved") is None
    signal = alert_signal("A1", 2)
    assert await store.change("A1", *alerts.fired_again(signal, now), "updated") is None  # resolved stays resolved


async def test_an_alert_is_reassigned_while_active_and_takes_findings_in_any_state_up_to_a_bound(store):
    await opened(store, "A1")
    now = utcnow()
    moved = await store.change("A1", *alerts.assigned("li.na", "wang", "north is hers", now), "assigned")
    assert moved["assignee"] == "li.na" and moved["history"][-1] == {
        "action": "assigned",
        "by": "wang",
        "at": moved["history"][-1]["at"],
        "text": "north is hers",
        "to": "li.na",
    }
    await store.change("A1", *alerts.transition("resolved", "li.na", "restocked", now, "stock-out"), "resolved")
    assert await store.change("A1", *alerts.assigned("zhao", "wang", None, now), "assigned") is None  # resolved: kept
    found = await store.change("A1", *alerts.noted("li.na", "the dealer's cash came in late", now), "noted")
    assert found["assignee"] == "li.na" and found["history"][-1]["action"] == "noted"
    await store.collection.update_one({"_id": "A1"}, {"$set": {"entries_added": alerts.MAX_ENTRIES_ADDED - 1}})
    assert await store.change("A1", *alerts.noted("li.na", "the last one", now), "noted") is not None
    assert await store.change("A1", *alerts.noted("li.na", "one too many", now), "noted") is None


async def test_a_later_firing_updates_an_alert_and_an_older_one_changes_nothing(store):
    await opened(store, "A1")
    now = utcnow()
    assert (await store.change("A1", *alerts.fired_again(alert_signal("A1", 3), now), "updated"))["count"] == 3
    assert await store.change("A1", *alerts.fired_again(alert_signal("A1", 2), now), "updated") is None
    assert not await store.insert(alerts.new_document(alert_signal("A1", 1), [], now, None, []), "opened")  # redelivered


async def test_every_write_is_one_change_with_the_public_view_even_when_its_writer_stopped(store):
    await opened(store, "A1", [alerts.route_plan("ops", "t")])
    await store.change("A1", *alerts.transition("acknowledged", "li.na", None, utcnow()), "acknowledged")
    changes = await store.changes.after(0)
    assert [(c["_id"], c["change"]) for c in changes] == [(1, "opened"), (2, "acknowledged")]
    assert all(set(c["alert"]).isdisjoint(alerts.PRIVATE) for c in changes)
    assert await store.collection.count_documents({"unlogged": {"$exists": True}}) == 0

    # a writer that is still between its write and its log entry is left to finish it
    await store.collection.update_one(
        {"_id": "A1"}, {"$set": {"updated_at": utcnow(), "unlogged": {"change": "acknowledged", "token": "busy"}}}
    )
    assert await store.log_unlogged() == 0
    # a writer that stopped after its write and before the log entry: the mark stays, and the
    # sweep logs it once it is older than the grace
    stale = utcnow() - dt.timedelta(minutes=1)
    await store.collection.update_one(
        {"_id": "A1"}, {"$set": {"status": "resolved", "updated_at": stale, "unlogged": {"change": "resolved", "token": "x"}}}
    )
    assert await store.log_unlogged() == 1
    assert await store.log_unlogged() == 0
    last = (await store.changes.after(2))[0]
    assert (last["change"], last["alert"]["status"]) == ("resolved", "resolved")


async def test_a_batch_of_new_alerts_logs_one_change_for_each_it_created_and_none_for_the_others(store):
    await opened(store, "A1")  # stored before: its copy in the batch is a redelivery
    batch = [(alerts.new_document(alert_signal(a, 1), [], OPENED, None, []), "opened") for a in ("A1", "A2", "A3")]
    assert await store.insert_many(batch) == {"A2", "A3"}
    changes = await store.changes.after(0)
    assert [(c["_id"], c["change"], c["alert"]["alert_id"]) for c in changes] == [
        (1, "opened", "A1"),
        (2, "opened", "A2"),
        (3, "opened", "A3"),
    ]
    assert all(set(c["alert"]).isdisjoint(alerts.PRIVATE) and c["alert"]["status"] == "open" for c in changes)
    assert await store.collection.count_documents({"unlogged": {"$exists": True}}) == 0  # each write's mark cleared
    # a later firing is a write too: its change carries the alert as it is after it
    await store.change("A2", *alerts.fired_again(alert_signal("A2", 4), utcnow()), "updated")
    last = (await store.changes.after(3))[0]
    assert (last["change"], last["alert"]["alert_id"], last["alert"]["count"]) == ("updated", "A2", 4)


async def test_readers_wait_at_a_young_gap_in_the_change_log_and_not_at_an_old_one(store):
    """Two instances number their changes from one counter: number 2 may be written just after 3.
    A reader that skipped it would never see it (its position moves past it)."""
    await store.changes.record("opened", {"alert_id": "A1"})
    entry = {"change": "opened", "alert_id": "A3", "alert": {"alert_id": "A3"}}
    await store.changes._changes.insert_one({"_id": 3, "at": utcnow(), **entry})  # 2 is still being written
    assert [c["_id"] for c in await store.changes.after(0)] == [1]
    await store.changes._changes.update_one({"_id": 3}, {"$set": {"at": utcnow() - dt.timedelta(minutes=5)}})
    assert [c["_id"] for c in await store.changes.after(0)] == [1, 3]  # 2 was never written: not waited for


async def test_pages_are_newest_first_and_never_repeat_or_skip(store):
    for n in range(7):
        await opened(store, f"A{n}", at=dt.datetime(2026, 3, 1 + n % 3, tzinfo=dt.UTC))
    seen, cursor = [], None
    while True:
        items, cursor = await store.page({}, 3, cursor)
        seen += [(i["first_seen_at"], i["alert_id"]) for i in items]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 7


async def test_the_feed_serves_what_the_log_holds_from_memory(store):
    for n in range(5):
        await opened(store, f"A{n}")
    feed = ChangeFeed(store.changes)
    feed.position = 0  # read from the start (a new feed starts at the newest change)
    reading = asyncio.create_task(feed.run())
    while feed.position != 5:
        await asyncio.sleep(0.05)
    for since in range(6):
        assert [c["_id"] for c in await feed.after(since)] == [c["_id"] for c in await store.changes.after(since)]
    arrival = feed.arrival()  # a live client waits on this, then asks again
    await store.changes.record("acknowledged", {"alert_id": "A0"})
    await asyncio.wait_for(arrival.wait(), 5)
    assert [c["change"] for c in await feed.after(5)] == ["acknowledged"]
    reading.cancel()


async def test_one_instance_holds_the_publishers_lease_until_it_lets_go(store):
    first, second = Lease(store.db, "publisher", seconds=30), Lease(store.db, "publisher", seconds=30)
    await first.ensure()
    assert await first.hold() and not await second.hold()
    await first.release()
    assert await second.hold() and not await Lease(store.db, "publisher").hold()


async def test_a_holder_that_keeps_renewing_keeps_the_lease_and_a_killed_one_loses_it_once_it_ran_out(store):
    lease = 1.5  # seconds; renewed a third of the way through
    first, second = Lease(store.db, "publisher", seconds=lease), Lease(store.db, "publisher", seconds=lease)
    await first.ensure()
    assert await first.hold()
    until = (await store.db["leases"].find_one({"_id": "publisher"}))["until"]
    assert await first.hold()  # renewed a third of the way through, not on every call
    assert (await store.db["leases"].find_one({"_id": "publisher"}))["until"] == until
    for _ in range(8):  # well past the lease, renewed as it goes: never free for another
        await asyncio.sleep(0.3)
        assert await first.hold()
        assert not await second.hold()
    # the holder stops renewing without letting go (killed): another takes it once it ran out
    assert not await second.hold()
    await asyncio.sleep(lease + 0.1)
    assert await second.hold()
    assert not await first.hold()


async def test_recording_the_deliveries_of_an_alert_that_is_gone_returns(store):
    """An alert removed while its notification was out (retention, an operator): the sender
    records nothing and goes on, it does not wait for the alert to come back."""
    outbox = Outbox(store.collection)
    await asyncio.wait_for(outbox.record_deliveries("gone", {}), 5)


async def test_a_notification_is_claimed_by_one_sender_and_a_group_goes_together(store):
    outbox = Outbox(store.collection)
    await outbox.ensure_indexes()
    group = [alerts.route_plan("ops", "t", group_seconds=60)]
    for alert_id in ("G1", "G2", "G3"):
        await opened(store, alert_id, group)
    await store.collection.update_many({}, {"$set": {"delivery_due_at": utcnow() - dt.timedelta(seconds=1)}})
    claimed = await outbox.claim_due_delivery(lease_seconds=60)
    others = await outbox.claim_group(claimed["deliveries"][0]["group"], claimed["_id"], lease_seconds=60)
    assert sorted([claimed["_id"], *(o["_id"] for o in others)]) == ["G1", "G2", "G3"]
    assert await outbox.claim_due_delivery(lease_seconds=60) is None  # all leased: nothing for a second sender
    await outbox.record_deliveries(claimed["_id"], {0: {**claimed["deliveries"][0], "status": "delivered"}})
    after = await store.collection.find_one({"_id": claimed["_id"]})
    assert (
        after["deliveries"][0]["status"] == "delivered" and "delivery_due_at" not in after and "delivery_lease_until" not in after
    )


async def test_a_silence_mutes_the_open_alerts_it_matches_and_the_new_ones_while_it_lasts(store):
    silences = SilenceStore(store.db)
    await opened(store, "N1", labels={"region": "north"})
    await opened(store, "S1", labels={"region": "south"})
    now = utcnow()
    matchers = SilenceMatchers(region="north")
    silence = await silences.create(
        NewSilence(matchers=matchers, ends_at=now + dt.timedelta(hours=1), created_by="li.na", comment="stocktaking"), now
    )
    assert await mute_open_alerts(store, silence, now) == 1
    north, south = await store.get("N1"), await store.get("S1")
    assert north["silenced_by"] == [silence["silence_id"]] and "silenced_by" not in south
    assert north["history"][-1]["action"] == "silenced"
    new_north = {"severity": "warning", "dealer_id": "D-9", "labels": {"region": "north"}}
    assert await silences.muting(new_north, now) == [silence["silence_id"]]
    assert await silences.muting({**new_north, "labels": {"region": "south"}}, now) == []
    await silences.expire(silence["silence_id"], "li.na", now + dt.timedelta(minutes=1))
    assert await silences.muting(new_north, now + dt.timedelta(minutes=2)) == []


async def test_an_escalation_is_claimed_and_its_notices_queued_in_one_write(store, mongo_url):
    """The database goes away while an escalation is written: either it happened whole or not at
    all, and then the next look escalates it (two writes lost the notices: #22)."""
    from urllib.parse import urlsplit

    from conftest import free_port
    from helpers import TcpProxy

    await opened(store, "E1", [alerts.route_plan("team", "t", escalate_after_seconds=60, escalate_to=("boss",))])
    await store.collection.update_one({"_id": "E1"}, {"$set": {"escalation_due_at": utcnow() - dt.timedelta(seconds=1)}})
    database = urlsplit(mongo_url)
    proxy = TcpProxy(free_port(), (database.hostname, database.port)).start()
    cut = AlertStore(Settings(mongo_url=mongo_url.replace(f":{database.port}/", f":{proxy.port}/"), mongo_db=store.db.name))
    held = proxy.hold_when("$push", "escalation")  # the write that queues the notices
    escalating = asyncio.ensure_future(Outbox(cut.collection).escalate_due(lambda name: f"target of {name}"))
    assert await asyncio.to_thread(held.wait, 10)
    proxy.close()  # the database is gone before it got that write
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a lost connection
        await asyncio.wait_for(escalating, 30)
    cut.close()
    after = await store.get("E1")
    notices = [d for d in after["deliveries"] if d["kind"] == "escalation"]
    assert "escalation_due_at" in await store.collection.find_one({"_id": "E1"}) and not notices  # not escalated at all
    alert, names = await Outbox(store.collection).escalate_due(lambda name: f"target of {name}")
    assert alert["_id"] == "E1" and names == ["boss"]
    after = await store.collection.find_one({"_id": "E1"})
    assert "escalation_due_at" not in after and [d["receiver"] for d in after["deliveries"] if d["kind"] == "escalation"] == [
        "boss"
    ]
