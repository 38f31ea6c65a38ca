"""Access and secrets on the real stack: reads need a key in production mode, roles, the body
limit and the stream cap before anything is read, open mode only on loopback, receivers' secret
URLs never shown, signed webhooks that cannot be replayed, inert event text in robot messages."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import pytest
from conftest import ROOT, free_port, routes_file, wait_for
from factories import now, over_budget, signal
from helpers import RobotServer, WebhookReceiver, drain, publish, queue_depth
from histories import post

from services.common.topology import Topology
from services.notify.channels.webhook import verify

VIEWER, OPERATOR = {"Authorization": "Bearer view-key"}, {"Authorization": "Bearer ops-key"}
KEYS = {"DEALERWATCH_API_KEYS": "ops-key", "DEALERWATCH_VIEWER_KEYS": "view-key"}


def test_in_production_mode_every_read_needs_a_key_and_acting_an_operator_key(services, amqp_url, namespace):
    ingest, rules = services("ingest", "rules", env={**KEYS, "DEALERWATCH_ADMIN_KEYS": "admin-key"})
    (notify,) = services("notify", env={**KEYS, "DEALERWATCH_RULES_URL": rules.url})
    post(ingest, over_budget("D-1", now()))
    alert = wait_for(lambda: httpx.get(f"{notify.url}/v1/alerts", headers=VIEWER).json()["items"])[0]
    reads = [
        "/v1/alerts",
        "/v1/alerts/counts",
        f"/v1/alerts/{alert['alert_id']}",
        "/v1/dealers",
        "/v1/dealers/D-1",
        "/v1/dealers/D-1/weekly-sales",
        "/v1/silences",
        "/v1/promotion-evaluations?dealer_id=D-1",
        "/v1/alerts/stream",
    ]
    for path in reads:
        assert httpx.get(f"{notify.url}{path}").status_code == 401, path
        assert httpx.get(f"{notify.url}{path}", headers={"Authorization": "Bearer wrong"}).status_code == 401, path
    for path in reads[:-1]:
        assert httpx.get(f"{notify.url}{path}", headers=VIEWER).status_code == 200, path
    with httpx.stream("GET", f"{notify.url}/v1/alerts/stream", headers=VIEWER, timeout=5) as stream:
        assert stream.status_code == 200
    # the dealer file still shows what rules keeps: notify asks rules with its own key
    assert httpx.get(f"{notify.url}/v1/dealers/D-1", headers=VIEWER).json()["measures"]
    act = f"{notify.url}/v1/alerts/{alert['alert_id']}/ack"
    assert httpx.post(act, json={"by": "li.na"}, headers=VIEWER).status_code == 403
    assert httpx.post(act, json={"by": "li.na"}, headers=OPERATOR).status_code == 200
    for path in ("/healthz", "/readyz", "/", "/board/app.js", "/openapi.json"):
        assert httpx.get(f"{notify.url}{path}").status_code == 200, path
    # rules: reads take notify's keys, reloading the admin key
    for path in ("/v1/dealers/D-1", "/clock", "/v1/set-aside"):
        assert httpx.get(f"{rules.url}{path}").status_code == 401
        assert httpx.get(f"{rules.url}{path}", headers=VIEWER).status_code == 200
    assert httpx.post(f"{rules.url}/admin/reload", headers=OPERATOR).status_code == 403
    assert httpx.post(f"{rules.url}/admin/reload", headers={"Authorization": "Bearer admin-key"}).status_code == 200


def _refused_while_sending(url: str, path: str, headers: str, size: int = 64 * 1024 * 1024) -> bytes:
    """Send a whole body as a client that reads only once it has sent everything (and asks the
    server to close after): the status line it then reads, or why it could not."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{headers}"
        sock.sendall(f"{head}Content-Length: {size}\r\nConnection: close\r\n\r\n".encode())
        chunk, sent = b"x" * 65536, 0
        try:
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError as exc:
            return f"send failed after {sent:,} bytes: {exc}".encode()
        return sock.recv(64).split(b"\r\n")[0]


def test_a_refused_body_is_answered_to_a_client_still_sending_it(services):
    """64 MB refused before it is read (no key: 401, over the limit: 413): the rest is read and
    dropped, so the client that sends it all before reading learns why (a reset connection before)."""
    (ingest,) = services("ingest", env={"DEALERWATCH_INGEST_KEYS": "k"})
    (notify,) = services("notify", env=KEYS)
    for url, path, headers, status in [
        (ingest.url, "/v1/events", "", b"401"),
        (ingest.url, "/v1/events", "Authorization: Bearer k\r\n", b"413"),
        (notify.url, "/v1/silences", "", b"401"),
        (notify.url, "/v1/silences", "Authorization: Bearer ops-key\r\n", b"413"),
    ]:
        answer = _refused_while_sending(url, path, headers)
        assert answer.startswith(b"HTTP/1.1 " + status), (url, path, answer)


def test_development_mode_answers_only_loopback_host_names(services):
    """A web page that made its own name resolve to 127.0.0.1 (DNS rebinding) is refused."""
    (notify,) = services("notify")
    port = notify.url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "192.168.1.20", "localhost.evil.example"):
        refused = httpx.get(f"{notify.url}/v1/alerts", headers={"Host": host})
        assert refused.status_code == 403 and "loopback" in refused.json()["detail"], host
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert httpx.get(f"{notify.url}/v1/alerts", headers={"Host": host}).status_code == 200, host


def test_readiness_says_ready_to_anyone_and_why_not_only_with_a_key(services):
    (rules,) = services("rules", env={**KEYS, "DEALERWATCH_ADMIN_KEYS": "admin-key"})
    assert httpx.get(f"{rules.url}/readyz").json() == {"ready": True}  # no host names, pids or policy errors
    detailed = httpx.get(f"{rules.url}/readyz", headers=VIEWER).json()
    assert detailed["ready"] and "partitions" in detailed and "policy_version" in detailed


def test_a_huge_body_is_refused_before_it_is_read_and_streams_are_capped(services):
    (notify,) = services("notify", env={**KEYS, "DEALERWATCH_MAX_STREAMS": "2"})
    huge = b'{"matchers": {"dealer_id": "' + b"x" * (64 * 1024 * 1024) + b'"}}'
    started = time.monotonic()
    assert httpx.post(f"{notify.url}/v1/silences", content=huge, timeout=30).status_code == 401  # no key: not even read
    assert httpx.post(f"{notify.url}/v1/silences", content=huge, headers=OPERATOR, timeout=30).status_code == 413
    chunks = (b"x" * 65536 for _ in range(1024))  # no length given: counted as it comes
    assert httpx.post(f"{notify.url}/v1/silences", content=chunks, headers=OPERATOR, timeout=30).status_code == 413
    assert time.monotonic() - started < 20
    as_json = {**OPERATOR, "Content-Type": "application/json"}
    deep = "[" * 30_000 + "]" * 30_000  # valid JSON, nested too deeply for any parser's recursion: not a 500
    for body in (deep, deep[:40_000]):
        refused = httpx.post(f"{notify.url}/v1/silences", content=body, headers=as_json)
        assert refused.status_code == 400 and refused.json()["detail"] == "There was an error parsing the body"
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{notify.url}/v1/alerts/stream", headers=VIEWER) as first,
        client.stream("GET", f"{notify.url}/v1/alerts/stream", headers=VIEWER) as second,
    ):
        assert first.status_code == second.status_code == 200
        third = httpx.get(f"{notify.url}/v1/alerts/stream", headers=VIEWER)
        assert third.status_code == 503 and third.headers["retry-after"]
    with httpx.stream(
        "GET", f"{notify.url}/v1/alerts/stream", headers={**VIEWER, "Last-Event-ID": "²".encode("latin-1")}, timeout=5
    ) as stream:
        assert stream.status_code == 200  # a superscript two is a digit to str.isdigit, not a number


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DEALERWATCH_NOTIFY_HOST": "0.0.0.0"}, "notify: bound to 0.0.0.0 (0.0.0.0) without keys; set DEALERWATCH_API_KEYS"),
        ({"DEALERWATCH_NOTIFY_HOST": "0"}, "notify: bound to 0 (0.0.0.0) without keys"),  # every interface, as text
        ({"DEALERWATCH_NOTIFY_HOST": "0x0"}, "notify: bound to 0x0 (0.0.0.0) without keys"),
        ({"DEALERWATCH_API_KEYS": " "}, "api_keys"),
        ({"DEALERWATCH_API_KEYS": ","}, "api_keys"),
        ({"DEALERWATCH_MAX_ATTEMPTS": "10"}, "max_attempts"),
    ],
)
def test_a_service_that_would_start_open_or_misconfigured_refuses_to_start(service_env, env, says):
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", "notify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**service_env, "DEALERWATCH_NOTIFY_PORT": str(free_port()), **env},
    )
    assert result.returncode != 0 and says in result.stdout + result.stderr


SECRET_URLS = {
    "DEALERWATCH_RECEIVER_SLACK_URL": "/services/T000/B000/slack-secret-token",
    "DEALERWATCH_RECEIVER_WECOM_URL": "/wecom?key=wecom-secret-token",
}


def test_receiver_secrets_never_leave_notify(services, tmp_path, amqp_url, namespace):
    robots_port = free_port()  # nothing listens: deliveries fail, and the failures are logged and dead-lettered
    path = routes_file(
        tmp_path,
        "version: 1\nreceivers:\n  slack: {slack: {url_env: DEALERWATCH_RECEIVER_SLACK_URL}}\n"
        "  wecom: {wecom: {url_env: DEALERWATCH_RECEIVER_WECOM_URL}}\n"
        "route:\n  receiver: slack\n  routes:\n    - {match: {severity: critical}, receiver: wecom, continue: true}\n"
        "    - {match: {severity: critical}, receiver: slack}\n",
    )
    env = {
        "DEALERWATCH_ROUTES_FILE": path,
        "DEALERWATCH_WEBHOOK_MAX_ATTEMPTS": "2",
        **{name: f"http://127.0.0.1:{robots_port}{value}" for name, value in SECRET_URLS.items()},
    }
    (notify,) = services("notify", env=env)
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("S1", 1, severity="critical"))
    wait_for(lambda: queue_depth(amqp_url, Topology(namespace).dead_letter_queue.name) == 2, 30)
    shown = json.dumps(httpx.get(f"{notify.url}/v1/alerts/S1").json()) + json.dumps(httpx.get(f"{notify.url}/v1/alerts").json())
    dead = drain(amqp_url, Topology(namespace).dead_letter_queue.name)
    everything = shown + notify.log() + "".join(m.body.decode() + json.dumps(m.headers, default=str) for m in dead)
    assert "secret-token" not in everything and "/services/" not in everything
    assert f"http://127.0.0.1:{robots_port}" in shown  # scheme and host are shown


def test_webhook_signatures_cover_a_timestamp_and_take_two_secrets_while_rotating(services, amqp_url, namespace):
    old, new = (
        WebhookReceiver(free_port(), secrets=[b"old-secret"]).start(),
        WebhookReceiver(free_port(), secrets=[b"new-secret"]).start(),
    )
    try:
        (notify,) = services(
            "notify",
            env={"DEALERWATCH_WEBHOOK_URLS": f"{old.url},{new.url}", "DEALERWATCH_WEBHOOK_SECRET": "new-secret,old-secret"},
        )
        publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("W1", 1))
        wait_for(lambda: old.received and new.received)  # each receiver verifies with its own secret
        assert old.refused == new.refused == 0
        header = new.headers[0]["X-Dealerwatch-Signature"]
        assert header.startswith("t=") and header.count("v1=") == 2
        body = json.dumps(new.received[0], ensure_ascii=False).encode()  # the receiver's own copy
        stamp = int(header.split(",")[0][2:])
        assert not verify(header, body + b" ", [b"new-secret"], stamp)  # another body
        assert not verify(header.replace(f"t={stamp}", f"t={stamp + 1}"), body, [b"new-secret"], stamp)  # another time
        assert not verify(header, body, [b"new-secret"], stamp + 301)  # replayed after the tolerance
    finally:
        old.stop()
        new.stop()


def test_robot_texts_carry_event_text_inert(services, tmp_path, amqp_url, namespace):
    robots = RobotServer(free_port()).start()
    try:
        path = routes_file(
            tmp_path,
            "version: 1\nreceivers:\n  slack: {slack: {url_env: DEALERWATCH_RECEIVER_SLACK_URL}}\n"
            "  wecom: {wecom: {url_env: DEALERWATCH_RECEIVER_WECOM_URL}}\n"
            "  feishu: {feishu: {url_env: DEALERWATCH_RECEIVER_FEISHU_URL}}\n"
            "route:\n  receiver: slack\n  routes:\n    - {match: {severity: warning}, receiver: wecom, continue: true}\n"
            "    - {match: {severity: warning}, receiver: feishu, continue: true}\n"
            "    - {match: {severity: warning}, receiver: slack}\n",
        )
        (notify,) = services(
            "notify",
            env={
                "DEALERWATCH_ROUTES_FILE": path,
                "DEALERWATCH_RECEIVER_SLACK_URL": f"{robots.base}/slack",
                "DEALERWATCH_RECEIVER_WECOM_URL": f"{robots.base}/wecom",
                "DEALERWATCH_RECEIVER_FEISHU_URL": f"{robots.base}/feishu",
            },
        )
        hostile = '<!channel> <@all> <at user_id="all">x</at> [click](http://evil.example) *loud* # big'
        publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("R1", 1, owner=hostile))
        wait_for(lambda: len(robots.requests) == 3)
        texts = {r["path"]: json.dumps(r["body"], ensure_ascii=False) for r in robots.requests}
        for text in texts.values():
            assert "<!channel>" not in text and "<@all>" not in text and "<at " not in text and "http://evil" not in text
        assert "[click](" not in texts["/wecom"] and "*loud*" not in texts["/wecom"]
        assert "*loud*" not in texts["/slack"]
    finally:
        robots.stop()


def test_smtp_uses_tls_as_its_port_implies():
    from services.notify.channels.email import EmailChannel

    def channel(port, starttls=None):
        return EmailChannel("mail", "smtp.example.com", port, "a@example.com", ["b@example.com"], starttls=starttls)

    assert channel(587)._starttls is True and not channel(587)._implicit_tls
    assert channel(465)._implicit_tls and channel(465)._starttls is None
    assert channel(25)._starttls is None  # whenever the server offers it
    assert channel(587, starttls=False)._starttls is False  # the route's word wins
