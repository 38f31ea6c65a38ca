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
  mail:     {email: {host: smtp.example, port: 587, from: dw@example.com, to: [ops@example.com], password_env: DW_SMTP}}
  wecom:    {wecom: {url_env: DW_WECOM}}
  dingtalk: {dingtalk: {url_env: DW_DING, secret_env: DW_DING_SECRET}}
  feishu:   {feishu: {url_env: DW_FEISHU}}
  slack:    {slack: {url_env: DW_SLACK, language: en}}
route: {receiver: hook}
"""
SECRETS = {
    "DW_SMTP": "smtp-password",
    "DW_WECOM": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-token",
    "DW_DING": "https://oapi.dingtalk.com/robot/send?access_token=ding-token",
    "DW_DING_SECRET": "SEC-ding",
    "DW_FEISHU": "https://open.feishu.cn/open-apis/bot/v2/hook/feishu-token",
    "DW_SLACK": "https://hooks.slack.com/services/T0/B0/slack-token",
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


@pytest.mark.parametrize("variable", ["DW_WECOM", "DW_SMTP", "DW_DING_SECRET"])
def test_a_secret_named_but_not_set_refuses_the_routes_file_naming_the_receiver(tmp_path, monkeypatch, variable):
    with pytest.raises(routes_file.RoutesError, match=rf"\${variable} is not set"):
        router(tmp_path, monkeypatch, unset=variable)
