"""Ingest against the real broker: what integrators see, and what reaches the queue."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlsplit

import httpx
from conftest import free_port, wait_for
from factories import now, sale, visit
from helpers import TcpProxy, drain_rules, rules_depth


def post(service, body, content_type="application/json", key=None, raw=None):
    headers = {"content-type": content_type}
    if key:
        headers["authorization"] = f"Bearer {key}"
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{service.url}/v1/events", content=content, headers=headers, timeout=15)


def test_batch_is_published_persistently_with_type_and_dealer_in_the_routing_key(services, amqp_url, namespace):
    (ingest,) = services("ingest")
    at = now()
    events = [sale("D-1", at), visit("D-2", at)]
    response = post(ingest, events)
    assert response.status_code == 202 and response.json() == {"accepted": 2}
    wait_for(lambda: rules_depth(amqp_url, namespace) == 2)
    messages = sorted(drain_rules(amqp_url, namespace), key=lambda m: m.routing_key.split(".")[-1])
    # the dealer's partition first (services/common/partitions.py: BLAKE2b-64 of the id mod 4 here)
    assert [m.routing_key for m in messages] == [f"p{_partition('D-1')}.sale.D-1", f"p{_partition('D-2')}.visit.D-2"]
    assert all(m.delivery_mode == 2 for m in messages)  # persistent
    assert [json.loads(m.body)["event_id"] for m in messages] == [e["event_id"] for e in events]
    assert [m.message_id for m in messages] == [e["event_id"] for e in events]


def test_one_invalid_event_rejects_the_whole_batch(services, amqp_url, namespace):
    (ingest,) = services("ingest")
    at = now()
    good, bad = sale("D-1", at), dict(sale("D-1", at), quantity=0)
    response = post(ingest, [good, good | {"event_id": "other"}, bad])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"index": 2, "field": "quantity", "message": "quantity must not be 0 (use a negative quantity for returns)"}
    ]
    # a marker after it: confirmed before its 202, behind anything the refused batch had published
    assert post(ingest, [good]).status_code == 202
    wait_for(lambda: rules_depth(amqp_url, namespace) >= 1)
    assert [json.loads(m.body)["event_id"] for m in drain_rules(amqp_url, namespace)] == [good["event_id"]]


def test_ndjson_single_object_and_docs(services, amqp_url, namespace):
    (ingest,) = services("ingest")
    at = now()
    lines = "\n".join(json.dumps(sale("D-1", at)) for _ in range(3))
    assert post(ingest, None, "application/x-ndjson", raw=lines.encode()).json() == {"accepted": 3}
    assert post(ingest, sale("D-1", at)).json() == {"accepted": 1}
    wait_for(lambda: rules_depth(amqp_url, namespace) == 4)
    document = httpx.get(f"{ingest.url}/openapi.json").json()
    assert {"Sale", "Visit", "PromotionPlanned", "TargetSet"} <= set(document["components"]["schemas"])
    assert "application/x-ndjson" in document["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert httpx.get(f"{ingest.url}/docs").status_code == 200


def test_api_keys_and_body_limit(services):
    (ingest,) = services("ingest", env={"DEALERWATCH_INGEST_KEYS": "k-one, k-two", "DEALERWATCH_INGEST_MAX_BODY_BYTES": "4096"})
    event = sale("D-1", now())
    assert post(ingest, [event]).status_code == 401
    assert post(ingest, [event], key="wrong").status_code == 401
    assert post(ingest, [event], key="k-two").status_code == 202
    assert post(ingest, [event] * 40, key="k-one").status_code == 413
    assert "k-one" not in ingest.log()  # keys never reach the logs
    # only JSON and NDJSON: a form or text/plain, which any web page may post, is not parsed
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        refused = post(ingest, [event], content_type, key="k-one")
        assert refused.status_code == 415 and "application/json" in refused.json()["error"], content_type


def test_broker_outage_answers_503_never_202(services, amqp_url):
    target = urlsplit(amqp_url)
    proxy = TcpProxy(free_port(), (target.hostname, target.port or 5672)).start()
    (ingest,) = services(
        "ingest",
        env={
            "DEALERWATCH_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
            "DEALERWATCH_PUBLISH_TIMEOUT_SECONDS": "2",
        },
    )
    event = sale("D-1", now())
    # (a 2 s confirm timeout can run out on a busy shared broker: retried, as a client would)
    wait_for(lambda: post(ingest, [event]).status_code == 202)
    proxy.close()
    wait_for(lambda: httpx.get(f"{ingest.url}/readyz").status_code == 503)
    response = post(ingest, [event])
    assert response.status_code == 503 and "retry" in response.json()["error"]
    proxy.start()  # the broker is back: ingest reconnects by itself
    wait_for(lambda: httpx.get(f"{ingest.url}/readyz").status_code == 200, seconds=20)
    assert post(ingest, [event]).status_code == 202
    proxy.close()


def _partition(dealer_id: str, partitions: int = 4) -> int:
    """The documented hash, computed here independently of services/common/partitions.py."""
    return int.from_bytes(hashlib.blake2b(dealer_id.encode(), digest_size=8).digest(), "big") % partitions
