"""Every channel against a real local receiver: robots with their signatures, and SMTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email import message_from_bytes, policy
from urllib.parse import unquote_plus

import pytest
from aiosmtpd.controller import Controller
from conftest import free_port, wait_for
from factories import signal
from helpers import RobotServer, publish

from services.common.topology import Topology

ROUTES = """version: 1
receivers:
  hook: {webhook: {url_env: DEALERWATCH_RECEIVER_HOOK_URL}}
  wecom: {wecom: {url_env: DEALERWATCH_RECEIVER_WECOM_URL}}
  dingtalk: {dingtalk: {url_env: DEALERWATCH_RECEIVER_DINGTALK_URL, secret_env: DEALERWATCH_RECEIVER_DINGTALK_SECRET}}
  feishu: {feishu: {url_env: DEALERWATCH_RECEIVER_FEISHU_URL, secret_env: DEALERWATCH_RECEIVER_FEISHU_SECRET, language: en}}
  slack: {slack: {url_env: DEALERWATCH_RECEIVER_SLACK_URL, language: en}}
  mail: {email: {host: 127.0.0.1, port: SMTP_PORT, from: dealerwatch@example.com, to: [ops@example.com], language: zh}}
route:
  receiver: hook
  routes:
    - {receiver: hook, continue: true}
    - {receiver: wecom, continue: true}
    - {receiver: dingtalk, continue: true}
    - {receiver: feishu, continue: true}
    - {receiver: slack, continue: true}
    - {receiver: mail, continue: true}
"""


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def robots():
    server = RobotServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


def test_each_channel_delivers_in_its_format_and_language(services, amqp_url, namespace, robots, mailbox, tmp_path):
    box, smtp_port = mailbox
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.replace("SMTP_PORT", str(smtp_port)))
    env = {
        "DEALERWATCH_ROUTES_FILE": str(path),
        "DEALERWATCH_RECEIVER_HOOK_URL": f"{robots.base}/hook",
        "DEALERWATCH_RECEIVER_WECOM_URL": f"{robots.base}/wecom?key=wecom-token",
        "DEALERWATCH_RECEIVER_DINGTALK_URL": f"{robots.base}/dingtalk?access_token=ding-token",
        "DEALERWATCH_RECEIVER_DINGTALK_SECRET": "SEC-ding",
        "DEALERWATCH_RECEIVER_FEISHU_URL": f"{robots.base}/feishu",
        "DEALERWATCH_RECEIVER_FEISHU_SECRET": "feishu-secret",
        "DEALERWATCH_RECEIVER_SLACK_URL": f"{robots.base}/slack",
    }
    (notify,) = services("notify", env=env)
    publish(amqp_url, Topology(namespace).alert_signals.name, "k", signal("C1", 1, severity="critical", owner="Li Na"))
    wait_for(lambda: len(robots.requests) == 5 and box.messages, seconds=20)
    by_path = {r["path"]: r for r in robots.requests}

    assert by_path["/hook"]["body"]["alert_id"] == "C1"
    wecom = by_path["/wecom"]
    assert wecom["query"]["key"] == "wecom-token" and wecom["body"]["msgtype"] == "markdown"
    assert (
        wecom["body"]["markdown"]["content"].startswith("【严重】sales-drop")
        and "责任人：Li Na" in wecom["body"]["markdown"]["content"]
    )

    ding = by_path["/dingtalk"]  # DingTalk: sign = base64(HMAC-SHA256(secret, timestamp + "\\n" + secret))
    expected = base64.b64encode(
        hmac.new(b"SEC-ding", f"{ding['query']['timestamp']}\nSEC-ding".encode(), hashlib.sha256).digest()
    )
    assert unquote_plus(ding["query"]["sign"]) == expected.decode() or ding["query"]["sign"] == expected.decode()
    assert ding["body"]["markdown"]["title"].startswith("【严重】")

    feishu = by_path["/feishu"]["body"]  # Feishu: sign = base64(HMAC-SHA256(key=timestamp + "\\n" + secret, msg=""))
    key = f"{feishu['timestamp']}\nfeishu-secret".encode()
    assert feishu["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert feishu["content"]["text"].startswith("[CRITICAL] sales-drop")

    assert (
        by_path["/slack"]["body"]["text"].startswith("[CRITICAL] sales-drop")
        and "Responsible: Li Na" in by_path["/slack"]["body"]["text"]
    )

    (mail,) = box.messages
    assert mail["Subject"] == "[经销商预警·严重] sales-drop：经销商 D-C1" and mail["To"] == "ops@example.com"
    assert "firing 1" in mail.get_content() and "责任人：Li Na" in mail.get_content()

    import httpx

    deliveries = httpx.get(f"{notify.url}/v1/alerts/C1").json()["deliveries"]
    assert sorted(d["receiver"] for d in deliveries if d["status"] == "delivered") == sorted(
        ["hook", "wecom", "dingtalk", "feishu", "slack", "mail"]
    )
    assert "wecom-token" not in str(deliveries) and "ding-token" not in str(deliveries)  # tokens are not shown


@pytest.mark.parametrize("language, header", [("en", "2 dealerwatch alerts"), ("zh", "经销商预警 2 条")])
def test_a_group_reads_as_one_message_listing_each_alert(language, header):
    from services.notify.channels.rendering import render

    alerts = [
        {
            "severity": "critical",
            "rule_id": "sales-drop",
            "dealer_id": "D-1",
            "status": "open",
            "summary": "sales fell 40%",
            "owner": "Wang Fang",
        },
        {
            "severity": "warning",
            "rule_id": "no-visit",
            "dealer_id": "D-2",
            "status": "resolved",
            "summary": "no visit for 30 days",
            "owner": None,
        },
    ]
    text = render("text", alerts, language)
    lines = text.splitlines()
    assert lines[0] == header
    assert [line for line in lines if line.startswith("- ")] == [line for line in lines[1:] if line.strip()]
    assert "sales fell 40%" in lines[2] and "Wang Fang" in lines[2] and "D-2" in lines[3]
    assert ("RESOLVED" if language == "en" else "已解决") in lines[3]
    assert "D-1" in render("subject", alerts, language) and "D-2" in render("subject", alerts, language)


@pytest.mark.parametrize(
    ("language", "named", "summary"),
    [("zh", "经销商 华东缝纫（D-1）", "近 7 天净销售额下降"), ("en", "dealer 华东缝纫 (D-1)", "net sales fell")],
)
def test_messages_name_the_dealer_and_speak_the_readers_language(language, named, summary):
    from services.notify.channels.escaping import markdown
    from services.notify.channels.rendering import render

    alert = {
        "severity": "warning",
        "rule_id": "sales-drop",
        "dealer_id": "D-1",
        "dealer_name": "华东缝纫",
        "status": "open",
        "summary": "net sales fell",
        "summaries": {"en": "net sales fell", "zh": "近 7 天净销售额下降"},
        "owner": None,
        "first_seen_at": "2026-11-29T00:00:00Z",
        "alert_id": "a-1",
    }
    for name in ("subject", "text"):
        assert named in render(name, [alert], language)
    assert summary in render("text", [alert], language)
    sneaky = {**alert, "dealer_name": "[click](http://evil.example) <!channel>"}
    assert "](http" not in render("text", [sneaky], language, markdown)  # a name is data: made inert
    older = {k: v for k, v in alert.items() if k not in ("dealer_name", "summaries")}  # stored before names
    assert "D-1" in render("text", [older], language) and "net sales fell" in render("text", [older], language)


def test_a_large_group_is_cut_to_the_robots_size_limit_and_says_how_many_are_left_out(robots):
    """WeCom refuses markdown over 4,096 bytes: a group of 80 alerts must still arrive."""
    import asyncio

    import httpx

    from services.notify.channels.robots import WeComChannel

    alerts = [
        {
            "severity": "warning",
            "rule_id": "visit-overdue",
            "dealer_id": f"D-{n:03d}",
            "status": "open",
            "owner": None,
            "summary": f"经销商 D-{n:03d} 已超过 30 天未拜访，请安排例行拜访。",
            "labels": {},
        }
        for n in range(80)
    ]

    async def send():
        async with httpx.AsyncClient() as client:
            await WeComChannel("wecom", f"{robots.base}/cgi-bin/webhook/send?key=k", client, language="zh").send(alerts)

    asyncio.run(send())
    (request,) = robots.requests
    text = request["body"]["markdown"]["content"]
    lines = text.splitlines()
    assert len(text.encode()) <= 4096 and lines[0] == "经销商预警 80 条"
    listed = [line for line in lines if line.startswith("- ")]
    assert 0 < len(listed) < 80 and lines[-1] == f"…… 另有 {80 - len(listed)} 条"
    assert [line.split(" · 经销商 ")[1][:5] for line in listed] == [
        f"D-{n:03d}" for n in range(len(listed))
    ]  # in order, whole lines
