"""Every channel a routes file can name is built from its receiver (notify/routes_file.py's
BUILDERS), with secrets from the environment and never shown."""

from __future__ import annotations

import httpx
import pytest

from services.common.settings import Settings
from services.notify import routes_file
from services.notify.router import Router

ROUTES = """version: 1
receivers:
  hook:     {webhook: {url: "https://hooks.example/in"}}
  mail:     {email: {host: smtp.example, port: 587, from: dw@example.com, to: [ops@example.com],
             password_env: DEALERWATCH_RECEIVER_DW_SMTP}}
  wecom:    {wecom: {url_env: DEALERWATCH_RECEIVER_DW_WECOM}}
  dingtalk: {dingtalk: {url_env: DEALERWATCH_RECEIVER_DW_DING, secret_env: DEALERWATCH_RECEIVER_DW_DING_SECRET}}
  feishu:   {feishu: {url_env: DEALERWATCH_RECEIVER_DW_FEISHU}}
  slack:    {slack: {url_env: DEALERWATCH_RECEIVER_DW_SLACK, language: en}}
route: {receiver: hook}
"""
SECRETS = {
    "DEALERWATCH_RECEIVER_DW_SMTP": "smtp-password",
    "DEALERWATCH_RECEIVER_DW_WECOM": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-token",
    "DEALERWATCH_RECEIVER_DW_DING": "https://oapi.dingtalk.com/robot/send?access_token=ding-token",
    "DEALERWATCH_RECEIVER_DW_DING_SECRET": "SEC-ding",
    "DEALERWATCH_RECEIVER_DW_FEISHU": "https://open.feishu.cn/open-apis/bot/v2/hook/feishu-token",
    "DEALERWATCH_RECEIVER_DW_SLACK": "https://hooks.slack.com/services/T0/B0/slack-token",
}


def router(tmp_path, monkeypatch, unset: str | None = None) -> Router:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    if unset:
        monkeypatch.delenv(unset)
    return Router(Settings(routes_file=str(path)), httpx.AsyncClient())


def test_every_channel_kind_is_built_and_shown_without_its_secrets(tmp_path, monkeypatch):
    built = router(tmp_path, monkeypatch)
    assert set(built.channels) == set(routes_file.CHANNEL_KINDS) - {"webhook", "email"} | {"hook", "mail"}
    targets = {name: built.target(name) for name in built.channels}
    assert targets["hook"] == "https://hooks.example"
    assert targets["mail"] == "smtp://smtp.example:587 to ops@example.com"
    assert targets["dingtalk"] == "dingtalk https://oapi.dingtalk.com"
    shown = " ".join(targets.values())
    assert not any(secret in shown for secret in ("token", "smtp-password", "SEC-ding", "/in"))


@pytest.mark.parametrize(
    "variable", ["DEALERWATCH_RECEIVER_DW_WECOM", "DEALERWATCH_RECEIVER_DW_SMTP", "DEALERWATCH_RECEIVER_DW_DING_SECRET"]
)
def test_a_secret_named_but_not_set_refuses_the_routes_file_naming_the_receiver(tmp_path, monkeypatch, variable):
    with pytest.raises(routes_file.RoutesError, match=rf"\${variable} is not set"):
        router(tmp_path, monkeypatch, unset=variable)


def test_a_routes_file_reads_only_the_receivers_variables_and_says_which_line_names_another(tmp_path):
    text = ROUTES.replace("password_env: DEALERWATCH_RECEIVER_DW_SMTP", "password_env: DEALERWATCH_ADMIN_KEYS")
    with pytest.raises(routes_file.RoutesError) as refused:
        routes_file.loads(text, "routes.yaml")
    assert "routes.yaml:5:" in str(refused.value) and "DEALERWATCH_RECEIVER_" in str(refused.value)


def test_smtp_credentials_without_tls_are_refused_with_their_line():
    text = ROUTES.replace("port: 587,", "port: 25, starttls: false,")
    with pytest.raises(routes_file.RoutesError, match=r"routes\.yaml:4: .*credentials are sent only over TLS"):
        routes_file.loads(text, "routes.yaml")


def test_a_url_with_a_line_break_is_refused_naming_its_receiver(tmp_path, monkeypatch):
    monkeypatch.setenv("DEALERWATCH_RECEIVER_DW_WECOM", SECRETS["DEALERWATCH_RECEIVER_DW_WECOM"] + "\n")
    with pytest.raises(routes_file.RoutesError, match=r"routes\.yaml:6: receiver 'wecom': .*a line break"):
        path = tmp_path / "routes.yaml"
        path.write_text(ROUTES)
        for name, value in SECRETS.items():
            if name != "DEALERWATCH_RECEIVER_DW_WECOM":
                monkeypatch.setenv(name, value)
        Router(Settings(routes_file=str(path)), httpx.AsyncClient())
