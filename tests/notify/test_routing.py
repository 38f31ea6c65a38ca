"""The routing tree (matchers, defaults, continue) and its commands."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from conftest import routes_file, wait_for
from factories import now, over_budget, signal
from helpers import publish
from histories import post

from services.cli import main
from services.common.topology import Topology
from services.notify import routes_file as routes

ROUTES = """version: 1
receivers:
  ops: {webhook: {url_env: DEALERWATCH_RECEIVER_OPS_HOOK}}
  oncall: {webhook: {url_env: DEALERWATCH_RECEIVER_ONCALL_HOOK}}
  north: {webhook: {url: "http://127.0.0.1:9/north"}}
  promotions: {webhook: {url_env: DEALERWATCH_RECEIVER_PROMO_HOOK}}
route:
  receiver: ops
  routes:
    - match: {severity: critical}
      receiver: oncall
      continue: true
    - match: {region: north}
      receiver: north
      routes:
        - match: {rule_id: promotion-over-budget}
          receiver: promotions
    - match: {region: south}
"""


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"severity": "warning", "region": "east"}, ["ops"]),  # nothing below matches: the default
        ({"severity": "critical", "region": "east"}, ["oncall"]),
        ({"severity": "critical", "region": "north"}, ["oncall", "north"]),  # continue
        ({"severity": "warning", "region": "north"}, ["north"]),
        ({"severity": "critical", "region": "north", "rule_id": "promotion-over-budget"}, ["oncall", "promotions"]),
        ({"severity": "info", "region": "south"}, ["ops"]),  # a route without receiver inherits
    ],
)
def test_routing_tree(labels, expected):
    assert routes.receivers_for(routes.loads(ROUTES).spec, labels) == expected


def test_errors_name_the_line():
    with pytest.raises(routes.RoutesError) as caught:
        routes.loads(ROUTES.replace("receiver: north\n", "receiver: nort\n"), "r.yaml")
    assert "'nort' is not among receivers" in str(caught.value)
    with pytest.raises(routes.RoutesError) as caught:
        routes.loads(ROUTES.replace("continue: true", "continu: true"), "r.yaml")
    assert str(caught.value).startswith("r.yaml:12:") and "unknown key 'continu'" in str(caught.value)


def test_routes_commands(tmp_path, capsys):
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    assert main(["routes", "check", str(path)]) == 0
    assert main(["routes", "test", "--file", str(path), "--labels", "severity=critical,region=north"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["oncall", "north"]
    path.write_text(ROUTES.replace("version: 1", "version: 3"))
    with pytest.raises(SystemExit) as exited:
        main(["routes", "check", str(path)])
    assert exited.value.code == 1


def test_alerts_reach_the_receivers_of_their_route_and_routes_reload(services, amqp_url, namespace, tmp_path, hooks):
    ops, oncall = hooks(), hooks()
    text = """version: 1
receivers:
  ops: {webhook: {url_env: DEALERWATCH_RECEIVER_OPS_HOOK}}
  oncall: {webhook: {url_env: DEALERWATCH_RECEIVER_ONCALL_HOOK}}
route:
  receiver: ops
  routes:
    - match: {severity: critical}
      receiver: oncall
"""
    path = routes_file(tmp_path, text)
    (notify,) = services(
        "notify",
        env={
            "DEALERWATCH_ROUTES_FILE": path,
            "DEALERWATCH_RECEIVER_OPS_HOOK": ops.url,
            "DEALERWATCH_RECEIVER_ONCALL_HOOK": oncall.url,
            "DEALERWATCH_FILES_POLL_SECONDS": "0.2",
        },
    )
    exchange = Topology(namespace).alert_signals.name
    publish(amqp_url, exchange, "k", signal("R1", 1), signal("R2", 1, severity="critical"))
    wait_for(lambda: ops.received and oncall.received)
    assert [a["alert_id"] for a in ops.received] == ["R1"] and [a["alert_id"] for a in oncall.received] == ["R2"]
    deliveries = httpx.get(f"{notify.url}/v1/alerts/R2").json()["deliveries"]
    assert [(d["receiver"], d["status"]) for d in deliveries] == [("oncall", "delivered")]
    assert "ONCALL" not in str(deliveries) and deliveries[0]["target"].startswith("http://127.0.0.1")

    routes_file(tmp_path, text.replace("severity: critical", "severity: warning"))  # hot reload
    wait_for(lambda: "routes reloaded" in notify.log())
    publish(amqp_url, exchange, "k", signal("R3", 1))
    wait_for(lambda: len(oncall.received) == 2)
    assert oncall.received[-1]["alert_id"] == "R3"
    routes_file(tmp_path, "version: 1\nreceivers: {}\n")  # invalid: refused, the routes stay
    wait_for(lambda: "routes reload refused" in notify.log())
    publish(amqp_url, exchange, "k", signal("R4", 1))
    wait_for(lambda: len(oncall.received) == 3)


def test_the_dealers_region_from_its_events_routes_and_silences_its_alerts(services, tmp_path, hooks):
    """Events carry the dealer's region; it becomes the alerts' `region` label end to end."""
    ops, north = hooks(), hooks()
    path = routes_file(
        tmp_path,
        """version: 1
receivers:
  ops: {webhook: {url_env: DEALERWATCH_RECEIVER_OPS_HOOK}}
  north: {webhook: {url_env: DEALERWATCH_RECEIVER_NORTH_HOOK}}
route:
  receiver: ops
  routes:
    - match: {region: north}
      receiver: north
""",
    )
    ingest, rules = services("ingest", "rules")
    (notify,) = services(
        "notify",
        env={
            "DEALERWATCH_ROUTES_FILE": path,
            "DEALERWATCH_RECEIVER_OPS_HOOK": ops.url,
            "DEALERWATCH_RECEIVER_NORTH_HOOK": north.url,
        },
    )
    at = now()
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    httpx.post(
        f"{notify.url}/v1/silences",
        json={"matchers": {"region": "south"}, "ends_at": ends, "created_by": "zhao.lei", "comment": "south region audit"},
    ).raise_for_status()

    post(ingest, over_budget("N-1", at, region="north") + over_budget("S-1", at, region="south") + over_budget("X-1", at))
    stored = wait_for(lambda: (a := httpx.get(f"{notify.url}/v1/alerts").json()["items"]) and len(a) == 3 and a)
    assert {a["dealer_id"]: a["labels"].get("region") for a in stored} == {"N-1": "north", "S-1": "south", "X-1": None}
    wait_for(lambda: north.received and ops.received)
    assert [a["dealer_id"] for a in north.received] == ["N-1"] and [a["dealer_id"] for a in ops.received] == ["X-1"]
    south = httpx.get(f"{notify.url}/v1/alerts", params={"region": "south"}).json()["items"]
    assert [a["dealer_id"] for a in south] == ["S-1"] and south[0]["silenced_by"]
    refused = httpx.post(f"{ingest.url}/v1/events", json=[{**over_budget("Y-1", at)[0], "region": ""}])
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "region"
