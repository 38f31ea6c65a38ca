"""The operators' metrics (#25) on the real stack in production mode: every metric the services
expose after real traffic, its value asserted (events accepted = events posted, each refusal by
reason, a dead letter counted with its reason, a delivery failure counted by channel); Debian's
`prometheus` scraping the stack and answering a query; the dashboard's and the alerting rules'
queries naming only metrics the services expose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, free_port, wait_for
from factories import now, over_budget, sale
from helpers import FailingReceiver, publish
from prometheus_client.parser import text_string_to_metric_families

from services.common.topology import Topology

KEYS = {"DEALERWATCH_INGEST_KEYS": "ingest-key", "DEALERWATCH_API_KEYS": "operator-key", "DEALERWATCH_ADMIN_KEYS": "admin-key"}
SCRAPER = "scraper-key"
AUTH = {"Authorization": f"Bearer {SCRAPER}"}
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "dealerwatch.json"
ALERTING = ROOT / "deploy" / "prometheus" / "rules.yml"


def scrape(service) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{service.url}/metrics", headers=AUTH).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def stack(services, hooks):
    receiver = hooks(FailingReceiver)
    env = {**KEYS, "DEALERWATCH_METRICS_KEYS": SCRAPER}
    ingest, rules = services("ingest", "rules", env=env)
    (notify,) = services(
        "notify",
        env={
            **env,
            "DEALERWATCH_RULES_URL": rules.url,
            "DEALERWATCH_WEBHOOK_URLS": receiver.url,
            "DEALERWATCH_DELIVERY_MAX_ATTEMPTS": "2",
        },
    )
    return ingest, rules, notify, receiver


def test_every_metric_after_real_traffic(stack, amqp_url, namespace):
    ingest, rules, notify, receiver = stack
    post = lambda events, key="ingest-key": httpx.post(  # noqa: E731 - a local shorthand
        f"{ingest.url}/v1/events", json=events, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    at = now()
    events = [sale("MX-1", at, amount=100 + n) for n in range(25)] + over_budget("MX-2", at, "P-1")
    assert post(events).status_code == 202
    assert post([{"type": "sale"}]).status_code == 422
    assert post(events[:1], key="wrong").status_code == 401
    assert httpx.get(f"{ingest.url}/metrics").status_code == 401  # a key even to read metrics
    assert httpx.get(f"{ingest.url}/metrics", headers={"Authorization": "Bearer operator-key"}).status_code == 200
    publish(amqp_url, Topology(namespace).events.name, "p0.sale.MX-9", b"not an event")

    ingested = scrape(ingest)
    assert value(ingested, "dealerwatch_ingest_events_accepted_total") == len(events)
    assert value(ingested, "dealerwatch_ingest_requests_refused_total", reason="invalid") == 1
    assert value(ingested, "dealerwatch_ingest_requests_refused_total", reason="unauthorized") == 1
    assert value(ingested, "dealerwatch_ingest_request_seconds_count") == 3
    assert value(ingested, "dealerwatch_ingest_publish_seconds_count") == 1
    assert (
        value(
            ingested,
            "dealerwatch_build_info",
            python=value_label(ingested, "dealerwatch_build_info", "python"),
            service="ingest",
            version="0.1.0",
        )
        == 1
    )

    judged = wait_for(
        lambda: (m := scrape(rules)) and value(m, "dealerwatch_rules_events_consumed_total") == len(events) and m, 30
    )
    assert value(judged, "dealerwatch_rules_judgements_total", trigger="event") == len(events)
    assert value(judged, "dealerwatch_rules_dealers") == 2 and value(judged, "dealerwatch_rules_partitions_owned") > 0
    # every judgement is asked of the engine, or answered by an answer it gave for the same outcomes
    asked, reused = (
        value(judged, "dealerwatch_rules_engine_seconds_count"),
        value(judged, "dealerwatch_rules_engine_answers_reused_total"),
    )
    assert asked > 0 and asked + reused >= len(events) and reused > 0
    dead = wait_for(
        lambda: (m := scrape(rules)) and value(m, "dealerwatch_dead_lettered_total", queue="events", reason="invalid") == 1 and m
    )
    assert value(dead, "dealerwatch_rules_flush_seconds_count") >= 1 and value(dead, "dealerwatch_rules_clock_lag_seconds") < 60
    assert any(name == "dealerwatch_rules_policy_info" for name, _ in dead)
    wait_for(lambda: value(scrape(rules), "dealerwatch_rules_queue_messages", partition="0") == 0, 20)

    def delivered():
        m = scrape(notify)
        return value(m, "dealerwatch_notify_deliveries_total", channel="webhook", outcome="gave_up") == 1 and m

    sent = wait_for(delivered, 30)
    assert value(sent, "dealerwatch_notify_deliveries_total", channel="webhook", outcome="failed") == 1  # then retried once
    assert value(sent, "dealerwatch_notify_delivery_seconds_count", channel="webhook") == 2 == len(receiver.failed)
    assert value(sent, "dealerwatch_notify_signals_stored_total", state="firing") >= 1
    assert value(sent, "dealerwatch_dead_lettered_total", queue="deliveries", reason="delivery failed") == 1
    counted = wait_for(
        lambda: (m := scrape(notify)) and value(m, "dealerwatch_notify_alerts", status="open", severity="critical") == 1 and m, 20
    )
    assert ("dealerwatch_notify_receivers_resting", ()) in counted and value(counted, "dealerwatch_notify_sse_clients") == 0
    assert value(counted, "dealerwatch_notify_change_log_lag") >= 0 and ("dealerwatch_notify_deliveries_waiting", ()) in counted


def value_label(samples: dict, name: str, label: str) -> str:
    return next(dict(labels)[label] for n, labels in samples if n == name)


def exposed_names(*services) -> set[str]:
    names = set()
    for service in services:
        for family in text_string_to_metric_families(httpx.get(f"{service.url}/metrics", headers=AUTH).text):
            names |= {sample.name for sample in family.samples}
    return names


def queried_names(text: str) -> set[str]:
    return set(re.findall(r"\b(dealerwatch_[a-z_]+)", text))


def test_the_dashboard_and_the_alerting_rules_query_only_what_the_services_expose(stack):
    ingest, rules, notify, _ = stack
    httpx.post(f"{ingest.url}/v1/events", json=over_budget("MX-3", now(), "P-1"), headers={"Authorization": "Bearer ingest-key"})
    wait_for(lambda: "dealerwatch_notify_delivery_seconds_bucket" in exposed_names(notify), 30)
    wait_for(lambda: "dealerwatch_rules_queue_messages" in exposed_names(rules), 30)  # read every 5 s
    exposed = exposed_names(ingest, rules, notify)
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(expressions) >= 12
    assert queried_names("\n".join(expressions)) - exposed == set()
    assert queried_names(ALERTING.read_text()) - exposed == set()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed (`make test` installs it)")
def test_prometheus_itself_scrapes_the_stack_and_answers_a_query(stack, tmp_path: Path):
    ingest, rules, notify, _ = stack
    assert (
        httpx.post(
            f"{ingest.url}/v1/events",
            json=[sale("MX-4", now()) for _ in range(7)],
            headers={"Authorization": "Bearer ingest-key"},
        ).status_code
        == 202
    )
    targets = [s.url.removeprefix("http://") for s in (ingest, rules, notify)]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 2s, scrape_timeout: 2s}\n"
        "scrape_configs:\n"
        "  - job_name: dealerwatch\n"
        f"    authorization: {{credentials: {SCRAPER}}}\n"
        f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
    )
    port = free_port()
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        query = f"http://127.0.0.1:{port}/api/v1/query"

        def accepted():
            try:
                result = httpx.get(query, params={"query": "dealerwatch_ingest_events_accepted_total"}).json()["data"]["result"]
            except (httpx.HTTPError, KeyError, ValueError):
                return None
            return result and float(result[0]["value"][1]) == 7 and result

        wait_for(accepted, 60, interval=0.5)

        def all_up():
            up = httpx.get(query, params={"query": "sum(up{job='dealerwatch'})"}).json()["data"]["result"]
            return up and float(up[0]["value"][1]) == 3

        wait_for(all_up, 30, interval=0.5)  # all three scraped with the scraper's key
    finally:
        server.terminate()
        server.wait(timeout=10)
        time.sleep(0)
