"""The dealer network on the real stack: master data, outlets and visit plans go through ingest,
rules and notify; the alerts they raise carry the dealer's name and both languages; the dealer
file, the outlet file and the visit-plan report show them."""

from __future__ import annotations

import datetime as dt

import httpx
from conftest import wait_for
from factories import network_event, now, outlet_registered
from histories import network_history

DAY = dt.timedelta(days=1)


def test_the_network_through_the_stack(services):
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    today = now().date()
    assert httpx.post(f"{ingest.url}/v1/events", json=network_history(today)).status_code == 202

    def alerts():
        items = httpx.get(f"{notify.url}/v1/alerts", params={"limit": 100}).json()["items"]
        return {(a["rule_id"], a["dealer_id"], a["subject"]): a for a in items if a["status"] == "open"}

    wanted = {
        ("planned-visit-missed", "N-1", "PL-missed"),
        ("outlet-silent", "N-1", "O-3"),
        ("distribution-coverage", "N-1", None),
        ("unregistered-dealer", "N-2", None),
    }
    coverage = ("distribution-coverage", "N-1", None)

    def settled(found: dict) -> bool:  # the alert's details are those of its newest firing, which may come a batch later
        return wanted <= set(found) and found[coverage]["details"]["measures"]["outlet_coverage_30d"] == 0.5

    opened = wait_for(lambda: (found := alerts()) and settled(found) and found, seconds=40)
    missed = opened[("planned-visit-missed", "N-1", "PL-missed")]
    assert missed["owner"] == "rep-9" and missed["dealer_name"] == "华东缝纫设备有限公司"
    assert "拜访计划 PL-missed" in missed["summaries"]["zh"] and missed["summary"] == missed["summaries"]["en"]
    assert opened[("distribution-coverage", "N-1", None)]["details"]["measures"]["outlet_coverage_30d"] == 0.5
    assert not {
        key for key in opened if key[1] == "N-1" and key[0] in ("unregistered-dealer", "outlet-silent") and key[2] != "O-3"
    }

    record = wait_for(
        lambda: (r := httpx.get(f"{notify.url}/v1/dealers/N-1").json()) and len(r.get("visit_plans", [])) == 5 and r, seconds=30
    )
    assert record["master"]["name"] == "华东缝纫设备有限公司" and record["master"]["region"] == "华东"
    assert record["master"]["registered"] is True and record["master"]["tier"] == "A"
    outlets = {o["outlet_id"]: o for o in record["outlets"]}
    assert (outlets["O-1"]["status"], outlets["O-1"]["net_sales_30d"], outlets["O-1"]["level"]) == (
        "open",
        1000,
        "sub-distributor",
    )
    assert outlets["O-1"]["last_sale_at"] is not None and outlets["O-3"]["last_sale_at"] is None
    assert outlets["O-2"]["status"] == "closed"
    statuses = {p["plan_id"]: p["status"] for p in record["visit_plans"]}
    assert statuses == {
        "PL-done": "done",
        "PL-late": "done-late",
        "PL-missed": "missed",
        "PL-cancel": "cancelled",
        "PL-future": "planned",
    }

    outlet = httpx.get(f"{notify.url}/v1/dealers/N-1/outlets/O-1").json()
    assert outlet["outlet"]["name"] == "网点 O-1" and outlet["dealer"]["name"] == "华东缝纫设备有限公司"
    assert [s["amount"] for s in outlet["sales"]] == [-200, 1200]  # newest first
    assert len(outlet["visits"]) == 1 and [p["plan_id"] for p in outlet["visit_plans"]] == ["PL-future"]
    silent = httpx.get(f"{notify.url}/v1/dealers/N-1/outlets/O-3").json()
    assert [a["rule_id"] for a in silent["alerts"]] == ["outlet-silent"]
    assert httpx.get(f"{notify.url}/v1/dealers/N-1/outlets/O-9").status_code == 404

    def report(group_by):
        params = {"group_by": group_by, "since": (today - 30 * DAY).isoformat(), "until": (today + 5 * DAY).isoformat()}
        response = httpx.get(f"{notify.url}/v1/reports/visit-plans", params=params)
        assert response.status_code == 200, response.text
        return {row["group"]: row for row in response.json()["items"]}

    by_visitor = report("visitor")
    rep7 = by_visitor["rep-7"]
    assert (rep7["planned"], rep7["done"], rep7["done-late"], rep7["cancelled"], rep7["pending"]) == (5, 2, 1, 1, 1)
    assert rep7["on_time_rate"] == round(2 / 3, 4)
    assert (by_visitor["rep-9"]["missed"], by_visitor["rep-9"]["on_time_rate"]) == (1, 0)
    assert {g: r["planned"] for g, r in report("dealer").items()} == {"N-1": 5, "N-2": 1}
    assert {g: r["planned"] for g, r in report("region").items()} == {"华东": 5, "": 1}
    bad = httpx.get(f"{notify.url}/v1/reports/visit-plans", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert bad.status_code == 422


def test_malformed_network_events_are_refused_at_the_door(services):
    (ingest,) = services("ingest")
    bad = [outlet_registered("N-1", now(), "O-1", level="wholesale"), network_event("dealer.updated", "N-1", now())]
    response = httpx.post(f"{ingest.url}/v1/events", json=bad)
    assert response.status_code == 422
    assert {(e["index"], e["field"]) for e in response.json()["errors"]} == {(0, "level"), (1, None)}


def test_a_large_network_is_read_a_page_at_a_time(services):
    """450 outlets and 450 plans of one dealer (#22: the file read every one of them, and matched
    every plan with every visit): the file shows the first 200 of each with the totals, and the
    pages give each exactly once, in order; a visit carries out the plan on its day."""
    from factories import visit_planned

    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    at, count = now() - DAY, 450
    outlets = [outlet_registered("N-big", at, f"O-{n:03d}") for n in range(count)]
    plans = [visit_planned("N-big", at, f"PL-{n:03d}", (at + (n % 30) * DAY).date()) for n in range(count)]
    visit = network_event("visit", "N-big", at, visitor_id="rep-7", role="rep", kind="routine", plan_id="PL-000")
    assert httpx.post(f"{ingest.url}/v1/events", json=outlets + plans + [visit], timeout=30).status_code == 202
    file = wait_for(
        lambda: (
            (r := httpx.get(f"{notify.url}/v1/dealers/N-big").json()).get("visit_plans_total") == count
            and r.get("outlets_total") == count
            and r
        ),
        seconds=30,
    )
    assert len(file["outlets"]) == len(file["visit_plans"]) == 200

    def every(kind: str, first: dict) -> list[dict]:
        items, cursor = list(first["items"]), first["next"]
        while cursor:
            page = httpx.get(f"{notify.url}/v1/dealers/N-big/{kind}", params={"cursor": cursor, "limit": 100}).json()
            items, cursor = items + page["items"], page["next"]
        return items

    listed = every("outlets", {"items": file["outlets"], "next": file["outlets_next"]})
    assert [o["outlet_id"] for o in listed] == [f"O-{n:03d}" for n in range(count)]
    planned = every("visit-plans", {"items": file["visit_plans"], "next": file["visit_plans_next"]})
    assert len({p["plan_id"] for p in planned}) == count and [p["planned_for"] for p in planned] == sorted(
        (p["planned_for"] for p in planned), reverse=True
    )
    assert {p["plan_id"]: p["status"] for p in planned}["PL-000"] == "done"
    assert httpx.get(f"{notify.url}/v1/dealers/N-big/outlets/O-449").json()["outlet"]["status"] == "open"


def test_a_dealer_registered_without_a_contact_person_is_registered(services):
    """#23: an ERP often has no contact person for a dealer; the registration is taken and the
    dealer file shows the name (it was refused, and the dealer stayed unregistered)."""
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    registration = {**network_event("dealer.registered", "N-nc", now(), name="无联系人经销商"), "tier": "B"}
    assert "contact_name" not in registration
    assert httpx.post(f"{ingest.url}/v1/events", json=[registration]).status_code == 202
    file = wait_for(lambda: (r := httpx.get(f"{notify.url}/v1/dealers/N-nc").json()).get("master") and r)
    assert file["master"]["name"] == "无联系人经销商" and file["master"].get("contact_name") is None
