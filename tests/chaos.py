"""`make chaos`: the fault suite. The services run as separate processes (as compose runs them)
on this machine's RabbitMQ and a MongoDB-protocol server of their own; a known history (41
dealers, 120 days, tests/network.py) is posted in batches with pauses between them, as an
uploader does, while faults are injected: SIGKILL of rules, notify and ingest (each started
again), a RabbitMQ application restart, a MongoDB-server restart. The client retries a refused
batch with the same events. At the end it prints what was lost, raised or sent, against
`dealerwatch backtest` of the same file, and exits 1 if anything is wrong.

    python tests/chaos.py [--batch 400] [--pause 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import io
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pymongo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import AMQP_URL, ROOT, Service, _delete_topology, free_port, stack_env
from helpers import WebhookReceiver, queue_depth
from histories import MARKER, alert_key, settle, stored_alerts, write
from network import network_history

from services import devstack
from services.common.mongo import timeline_id
from services.common.topology import Topology
from services.rules import policy
from services.rules.backtest import backtest

HOLD_SECONDS = 45  # longer than any outage below; the production default is an hour


class Stack:
    def __init__(self, workdir: Path, hook: WebhookReceiver):
        self.namespace = f"chaos{uuid.uuid4().hex[:8]}"
        self.mongo_port = free_port()
        self.mongo_storage = str(workdir / "mongo")
        self.mongo_log = open(workdir / "mongo.log", "ab")  # noqa: SIM115 - kept open while the stack runs
        self.mongo_url = f"mongodb://127.0.0.1:{self.mongo_port}/?directConnection=true&retryWrites=false"
        self.workdir = workdir
        self.env = stack_env(
            AMQP_URL,
            self.mongo_url,
            self.namespace,
            webhook_urls=hook.url,
            receivers_allow_private="true",  # the receiver listens on 127.0.0.1 (#22: refused by default)
            delivery_retry_initial_seconds="0.5",
            delivery_retry_max_seconds="2",
            clock_hold_seconds=str(HOLD_SECONDS),
            ingest_port=str(free_port()),
            rules_port=str(rules_port := free_port()),
            notify_port=str(free_port()),
            rules_url=f"http://127.0.0.1:{rules_port}",  # notify's reports follow the rules' policy
        )
        self.services: dict[str, Service] = {}
        self.mongo: subprocess.Popen | None = None

    def start(self) -> None:
        devstack.ensure_rabbitmq(AMQP_URL)
        self.mongo = devstack.start_mongo(self.mongo_port, self.mongo_storage, log_file=self.mongo_log)
        for name in ("ingest", "rules", "notify"):
            self.services[name] = Service(name, self.env, self.workdir).start()

    def kill(self, name: str, down_for: float) -> None:
        self.services[name].stop(kill=True)
        time.sleep(down_for)
        self.services[name] = Service(name, self.env, self.workdir).start()

    def restart_rabbitmq(self, down_for: float) -> None:
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True)
        time.sleep(down_for)
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True)

    def restart_mongo(self, down_for: float) -> None:
        self.mongo.kill()
        self.mongo.wait()
        time.sleep(down_for)
        self.mongo = devstack.start_mongo(self.mongo_port, self.mongo_storage, log_file=self.mongo_log)

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        if self.mongo is not None:
            devstack.stop(self.mongo)
        asyncio.run(_delete_topology(AMQP_URL, self.namespace))

    def __getitem__(self, name: str) -> Service:
        return self.services[name]


def post_until_accepted(stack: Stack, batch: list[dict]) -> int:
    """What an integrator does: a refused or unanswered request is sent again, same events."""
    tries = 0
    while True:
        tries += 1
        try:
            response = httpx.post(f"{stack['ingest'].url}/v1/events", json=batch, timeout=30)
            if response.status_code == 202:
                return tries
            if response.status_code != 503:
                raise SystemExit(f"batch refused with {response.status_code}: {response.text[:1000]}")
        except httpx.HTTPError:
            pass
        time.sleep(0.5)


def run(batch_size: int, pause: float) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="dealerwatch-chaos-"))
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    events = network_history(end)
    path = write(workdir / "events.ndjson", events)
    hook = WebhookReceiver(free_port()).start()
    stack = Stack(workdir, hook)
    stack.start()
    batches = [events[i : i + batch_size] for i in range(0, len(events), batch_size)]
    step = max(1, len(batches) // 6)
    plan = {  # after which batch each fault starts; the client goes on posting meanwhile
        step: ("SIGKILL rules", lambda: stack.kill("rules", 3)),
        2 * step: ("SIGKILL notify", lambda: stack.kill("notify", 3)),
        3 * step: ("SIGKILL ingest", lambda: stack.kill("ingest", 2)),
        4 * step: ("RabbitMQ application restart", lambda: stack.restart_rabbitmq(3)),
        5 * step: ("MongoDB server restart", lambda: stack.restart_mongo(2)),
    }
    injected, retries, started = [], 0, time.monotonic()
    try:
        faults: list[threading.Thread] = []
        for number, batch in enumerate(batches):
            retries += post_until_accepted(stack, batch) - 1
            if number in plan:
                for fault in faults:
                    fault.join()
                name, action = plan[number]
                injected.append(name)
                faults = [threading.Thread(target=action)]
                faults[0].start()
            time.sleep(pause * (4 if number % 7 == 6 else 1))  # now and then a longer pause
        for fault in faults:
            fault.join()
        print(
            f"posted {len(events)} events in {len(batches)} batches ({retries} retried) in "
            f"{time.monotonic() - started:.0f}s; waiting for holds to end",
            flush=True,
        )
        return report(stack, hook, events, path, injected, retries)
    finally:
        stack.stop()
        hook.stop()


def report(stack: Stack, hook: WebhookReceiver, events: list[dict], path: str, injected: list[str], retries: int) -> int:
    rules, notify, ingest = stack["rules"], stack["notify"], stack["ingest"]
    settle(ingest, notify, 180)
    deadline = time.monotonic() + HOLD_SECONDS + 120
    while httpx.get(f"{rules.url}/clock").json()["dealers_held"] and time.monotonic() < deadline:
        time.sleep(1)
    before = dt.datetime.fromisoformat(httpx.get(f"{rules.url}/clock").json()["judged_until"])
    settle(ingest, notify, 180)
    stored = [a for a in stored_alerts(notify) if a["dealer_id"] != MARKER]
    after = dt.datetime.fromisoformat(httpx.get(f"{rules.url}/clock").json()["judged_until"])
    expected_open, expected_ever = backtest_alerts(path, before)
    _, upper_ever = backtest_alerts(path, after)

    accepted = collections.Counter(e["dealer_id"] for e in events)
    counted = {d: httpx.get(f"{rules.url}/v1/dealers/{d}").json().get("events_counted", 0) for d in accepted}
    with pymongo.MongoClient(stack.mongo_url) as client:
        ids = [timeline_id(e["dealer_id"], e["event_id"]) for e in events]
        in_file = client[stack.namespace]["dealer_timeline"].count_documents({"_id": {"$in": ids}})
    live_open = {alert_key(a) for a in stored if a["status"] in ("open", "acknowledged")}
    keys = collections.Counter(alert_key(a) for a in stored)
    deadline = time.monotonic() + 60  # deliveries may still be on their way
    while True:
        notified = collections.Counter(h.get("Idempotency-Key") for h in hook.headers)
        firing = {body["alert_id"] for body in hook.received if body.get("notification") == "firing"}
        never = [a for a in stored if a["alert_id"] not in firing and not a.get("silenced_by")]
        if not never or time.monotonic() > deadline:
            break
        time.sleep(1)
    rows = [
        ("faults injected", ", ".join(injected), True),
        ("events accepted (202)", len(events), True),
        ("requests retried by the client", retries, True),
        (
            "events lost by rules (accepted - counted)",
            sum(accepted.values()) - sum(counted.values()),
            sum(counted.values()) == sum(accepted.values()),
        ),
        ("events lost by the dealer file", len(events) - in_file, in_file == len(events)),
        ("events dead-lettered", queue_depth(AMQP_URL, Topology(stack.namespace).dead_letter_queue.name), True),
        ("alerts open: live / backtest (equal)", f"{len(live_open)} / {len(expected_open)}", live_open == expected_open),
        ("alerts ever raised that the backtest does not raise", len(set(keys) - upper_ever), not set(keys) - upper_ever),
        ("alerts the backtest raises that were never raised", len(expected_ever - set(keys)), not expected_ever - set(keys)),
        ("alerts stored twice", sum(n - 1 for n in keys.values() if n > 1), all(n == 1 for n in keys.values())),
        ("alerts never notified", len(never), not never),
        ("repeated notifications (dropped by Idempotency-Key)", sum(n - 1 for n in notified.values() if n > 1), True),
    ]
    print("\n| check | result |\n|---|---|")
    for name, value, ok in rows:
        print(f"| {name} | {value}{'' if ok else ' **FAILED**'} |")
    if live_open != expected_open:
        print("live only:", sorted(live_open - expected_open), "\nbacktest only:", sorted(expected_open - live_open))
    warnings_report(notify, min(dt.datetime.fromisoformat(e["occurred_at"]) for e in events))
    return 0 if all(ok for _, _, ok in rows) else 1


WARNING_COLUMNS = (
    "raised",
    "resolved_by_rules",
    "resolved_by_person",
    "open",
    "recurred_30d",
    "resolve_p50_hours",
    "resolve_p90_hours",
)


def warnings_report(notify, earliest: dt.datetime) -> None:
    """The warnings report (#23) on the history just judged, by rule: what the procedure's numbers
    look like on a year of a network's events (a view, not a check)."""
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    since = max(earliest, until - dt.timedelta(days=366))
    response = httpx.get(
        f"{notify.url}/v1/reports/warnings", params={"group_by": "rule", "since": since.isoformat(), "until": until.isoformat()}
    )
    if response.status_code != 200:
        print(f"\nthe warnings report answered {response.status_code}: {response.text[:300]}")
        return
    print(f"\nwarnings report by rule, alerts first seen from {since:%Y-%m-%d}:\n")
    print("| rule | " + " | ".join(WARNING_COLUMNS) + " |\n|---|" + "---|" * len(WARNING_COLUMNS))
    for row in response.json()["items"]:
        print(f"| {row['group']} | " + " | ".join("–" if row[c] is None else str(row[c]) for c in WARNING_COLUMNS) + " |")


def backtest_alerts(path: str, now: dt.datetime) -> tuple[set[tuple], set[tuple]]:
    """(alerts open at `now`, alerts ever opened) by `dealerwatch backtest`, its clock run to `now`
    as the live clock is: no extra judgement of every dealer at `now` (a measure that grows all
    day, `month_fraction_elapsed`, crossed a threshold between a dealer's last deadline and `now`
    and the check failed on the hours of the day when it did)."""
    out = io.StringIO()
    default = policy.load(str(ROOT / "policies" / "default.yaml"))
    backtest(path, default, now, out=out, err=io.StringIO(), judge_all_at_end=False)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    key = lambda a: (a["rule_id"], a["dealer_id"], a["subject"], dt.datetime.fromisoformat(a["opened_at"]).isoformat())  # noqa: E731
    resolved = {a["alert_id"] for a in lines if a["state"] == "resolved"}
    return (
        {key(a) for a in lines if a["state"] == "open" and a["alert_id"] not in resolved},
        {key(a) for a in lines if a["state"] == "open"},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--pause", type=float, default=1.0)
    args = parser.parse_args()
    return run(args.batch, args.pause)


if __name__ == "__main__":
    sys.exit(main())
