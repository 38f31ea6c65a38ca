"""A receiver that fails in a way nobody planned for is still one failed attempt (#22): recorded
with a short reason, backed off, given up and dead-lettered like any other, while the healthy
receivers of the same notification hear it exactly once. Receivers are reached only where the
routes file may send them, and credentials go only over TLS."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import free_port, routes_file, wait_for
from factories import signal
from helpers import RobotServer, WebhookReceiver, drain, publish

from services.common.topology import Topology
from services.notify.channels.base import DeliveryFailed, receiver_client
from services.notify.channels.email import EmailChannel

ROUTES = """version: 1
receivers:
  robot: {slack: {url_env: DEALERWATCH_RECEIVER_ROBOT_URL}}
  hook: {webhook: {url_env: DEALERWATCH_RECEIVER_HOOK_URL}}
route:
  receiver: hook
  routes:
    - {receiver: robot, continue: true}
    - {receiver: hook}
"""


@pytest.mark.parametrize("answer", [b"[]", b"1", b"null"])
def test_a_robot_answering_json_that_is_not_an_object_fails_and_the_healthy_receiver_hears_once(
    services, amqp_url, namespace, tmp_path, answer
):
    robot, hook = RobotServer(free_port(), answer=answer).start(), WebhookReceiver(free_port()).start()
    try:
        env = {
            "DEALERWATCH_ROUTES_FILE": routes_file(tmp_path, ROUTES),
            "DEALERWATCH_RECEIVER_ROBOT_URL": f"{robot.base}/services/T0/B0/token",
            "DEALERWATCH_RECEIVER_HOOK_URL": hook.url,
            "DEALERWATCH_DELIVERY_MAX_ATTEMPTS": "4",
        }
        (notify,) = services("notify", env=env)
        publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("R1", 1))

        def robot_delivery():
            deliveries = httpx.get(f"{notify.url}/v1/alerts/R1").json()["deliveries"]
            return next(d for d in deliveries if d["receiver"] == "robot")

        failed = wait_for(lambda: (d := robot_delivery())["status"] == "failed" and d, seconds=30)
        assert failed["attempts"] == 4 == len(robot.requests)
        assert failed["last_error"] == "the robot's answer is not understood (JSON, not an object)"
        gaps = [later - earlier for earlier, later in zip(robot.times, robot.times[1:], strict=False)]
        assert all(gap >= 0.15 for gap in gaps)  # backed off between attempts (0.2 s, 0.4 s, then at most 0.5 s)
        dead = wait_for(lambda: drain(amqp_url, f"{namespace}.dead-letter"), seconds=10)
        assert "robot" in dead[0].headers["x-dealerwatch-error"]
        assert [r["alert_id"] for r in hook.received] == ["R1"]  # once, however often the robot was tried
        assert "token" not in json.dumps(failed)
    finally:
        robot.stop()
        hook.stop()


def test_receivers_on_private_addresses_are_refused_unless_allowed(services, amqp_url, namespace, tmp_path):
    hook = WebhookReceiver(free_port()).start()
    try:
        routes = "version: 1\nreceivers:\n  hook: {webhook: {url_env: DEALERWATCH_RECEIVER_HOOK_URL}}\nroute: {receiver: hook}\n"
        env = {
            "DEALERWATCH_ROUTES_FILE": routes_file(tmp_path, routes),
            "DEALERWATCH_RECEIVER_HOOK_URL": hook.url,
            "DEALERWATCH_RECEIVERS_ALLOW_PRIVATE": "false",
            "DEALERWATCH_DELIVERY_MAX_ATTEMPTS": "2",
        }
        (notify,) = services("notify", env=env)
        publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("P1", 1))
        delivery = wait_for(
            lambda: (d := httpx.get(f"{notify.url}/v1/alerts/P1").json()["deliveries"][0])["status"] == "failed" and d
        )
        assert "private address" in delivery["last_error"] and "127.0.0.1" not in delivery["last_error"]
        assert hook.received == []  # nothing reached it
    finally:
        hook.stop()


class Mailbox:
    def __init__(self):
        self.messages, self.commands = [], []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.commands.append(f"AUTH {mechanism}")  # a password arrived in the clear
        return AuthResult(success=False)


@pytest.fixture
def plain_smtp():
    """An SMTP server that offers no STARTTLS but takes logins: one that would read a password."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), authenticator=box.authenticate, auth_require_tls=False)
    controller.start()
    yield box, controller.port
    controller.stop()


ALERT = {
    "severity": "warning",
    "rule_id": "sales-drop",
    "dealer_id": "D-1",
    "dealer_name": "华东\u2028Bcc: everyone@example.com",  # a line separator in an event's text
    "status": "open",
    "summary": "net sales fell",
    "owner": None,
    "alert_id": "a-1",
    "first_seen_at": "2026-12-01T00:00:00Z",
    "notification": "firing",
    "labels": {},
}


def test_smtp_credentials_are_never_sent_without_tls(plain_smtp):
    box, port = plain_smtp

    async def send(**credentials):
        channel = EmailChannel(
            "mail", "127.0.0.1", port, "dw@example.com", ["ops@example.com"], allow_private=True, **credentials
        )
        await channel.send([ALERT])

    with pytest.raises(DeliveryFailed, match="offers no STARTTLS"):
        asyncio.run(send(username="dw", password="secret"))
    assert box.commands == [] and box.messages == []  # no login tried, nothing sent in the clear
    asyncio.run(send())  # without credentials: plain SMTP on port 25-style servers is fine
    (mail,) = box.messages
    headers = mail.split(b"\r\n\r\n")[0].decode()
    assert "Bcc" not in [line.split(":")[0] for line in headers.splitlines()]  # one Subject line, no header added


def test_a_private_host_is_refused_at_connection_and_allowed_by_the_setting():
    async def get(allow_private: bool) -> str:
        async with receiver_client(allow_private) as client:
            try:
                await client.post(f"http://127.0.0.1:{free_port()}/hook", content=b"{}")
            except DeliveryFailed as exc:
                return exc.reason
            except httpx.ConnectError:
                return "connected to nothing there"
        return "answered"

    assert "private address" in asyncio.run(get(False))
    assert asyncio.run(get(True)) == "connected to nothing there"
