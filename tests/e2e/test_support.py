"""Support and incentives end to end (#24): a history that uses every new event and rule gives
live exactly the backtest's alerts; supports are evaluated with the alerts they resolved; the
ranking of where to send support next follows its definition on a generated network; the
dealer file shows each incentive program."""

from __future__ import annotations

import datetime as dt
import random

import httpx
from conftest import wait_for
from factories import dealer_registered, now, over_budget, sale, support_dispatched, visit
from histories import assert_converged, post, quarter_start, support_history, write

DAY = dt.timedelta(days=1)
CLOCK = {"DEALERWATCH_CLOCK_GRACE_SECONDS": "300", "DEALERWATCH_CLOCK_HOLD_SECONDS": "12"}
NEW_RULES = {
    "promotion-behind-expectation",
    "support-ineffective",
    "vehicle-cost-unshared",
    "rebate-tier-within-reach",
    "rebate-gate-at-risk",
}
WEIGHTS = {"critical": 1.0, "warning": 0.5, "info": 0.1}  # policies/default.yaml's support section


def test_every_support_and_incentive_rule_live_as_in_the_backtest(services, tmp_path):
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=2)
    events = support_history(end)
    path = write(tmp_path / "events.ndjson", events)
    ingest, rules = services("ingest", "rules", env=CLOCK)
    (notify,) = services("notify", env={**CLOCK, "DEALERWATCH_RULES_URL": rules.url})
    for start in range(0, len(events), 200):
        post(ingest, events[start : start + 200])
    live = assert_converged(rules, ingest, notify, path)
    assert {rule for rule, *_ in live} >= NEW_RULES
    assert ("vehicle-cost-unshared", "S-B", "SB-car") not in {key[:3] for key in live}  # shared at 1%

    file = wait_for(lambda: (f := httpx.get(f"{notify.url}/v1/dealers/S-A").json()) and len(f["support"]["past"]) == 2 and f)
    rep = next(e for e in file["support"]["past"] if e["support_id"] == "SA-rep")
    assert rep["ended_early"] and rep["days"] == 9.5 and rep["verdict"] == "ineffective"
    # P: the sales of its 10 days (the last one's at 02:00, before noon), S: those of the 9.5 days before
    assert (rep["sales_during"], rep["sales_before"], rep["net_cost"]) == (500 * 10, 500 * 9, 4000)
    assert "visit-overdue" in {a["rule_id"] for a in rep["alerts_open_at_start"]} and rep["alerts_resolved_by_end"] == []
    (car,) = httpx.get(f"{notify.url}/v1/dealers/S-B/support").json()["past"]
    assert not car["ended_early"] and car["days"] == 13 and car["net_cost"] == 891.0

    gate = httpx.get(f"{notify.url}/v1/dealers/I-GATE").json()["incentives"]
    (program,) = gate
    this_quarter = [
        e
        for e in events
        if e["dealer_id"] == "I-GATE" and e["type"] == "sale" and e["occurred_at"][:10] >= quarter_start(end.date()).isoformat()
    ]
    assert program["program_id"] == "quarterly-rebate" and program["sales"] == 1000 * len(this_quarter)
    assert program["rate"] == 0 and program["next_gap"] == 300000 - program["sales"] and program["gate_target"] == 270000
    assert program["past"][0]["sales"] > 0 and program["past"][0]["days_left"] == 0


def test_support_goes_first_where_most_is_at_stake(services):
    """A generated network whose order is known: each dealer's baseline and last week are set,
    some have a critical alert; the ranking is the score's definition over those and the alerts
    notify holds, the region filter keeps the order, and a dealer with support running is apart."""
    ingest, rules = services("ingest", "rules")
    (notify,) = services("notify", env={"DEALERWATCH_RULES_URL": rules.url})
    rng, at = random.Random(24), now()
    expected_gap, events = {}, []
    for n in range(14):
        dealer, region = f"G-{n:02d}", ("华东", "华北")[n % 2]
        weekly, recent = rng.choice([800, 1600, 2400, 4000]), rng.choice([0, 300, 1500, 5000])
        events.append(dealer_registered(dealer, at - 70 * DAY, region=region))
        events += [sale(dealer, at - week * 7 * DAY, weekly) for week in range(2, 9)]  # 7 weeks of the 8
        events += [sale(dealer, at - DAY, recent)] if recent else []
        if n % 4 == 1:
            events += over_budget(dealer, at - 2 * DAY)  # critical
        if n == 5:
            events += [visit(dealer, at - 3 * DAY)]
        expected_gap[dealer] = max(0.0, 7 * weekly / 8 - recent)
    running = support_dispatched("G-03", at, "G3-rep", (at - DAY).date(), (at + 3 * DAY).date())
    post(ingest, sorted(events, key=lambda e: e["occurred_at"]) + [running])

    def ranking(**params):
        return httpx.get(f"{notify.url}/v1/support/priorities", params={"limit": 50, **params}).json()

    def expected() -> list[tuple[str, float]]:
        rows = []
        for dealer, gap in expected_gap.items():
            if dealer == "G-03":
                continue
            alerts = httpx.get(f"{notify.url}/v1/alerts", params={"dealer_id": dealer, "status": "open,acknowledged"}).json()
            weight = sum(WEIGHTS[a["severity"]] for a in alerts["items"])
            rows.append((dealer, round(gap * (1 + weight), 2)))
        return sorted(rows, key=lambda row: (-row[1], row[0]))

    def matches():
        got = ranking()
        return [(r["dealer_id"], round(r["score"], 2)) for r in got["ranked"]] == expected() and got

    got = wait_for(matches, 60, interval=0.5)
    first = got["ranked"][0]
    assert first["target_gap"] == 0 and first["baseline_gap"] == expected_gap[first["dealer_id"]]
    assert {a["severity"] for r in got["ranked"] for a in r["open_alerts"]} >= {"critical", "warning"}
    (apart,) = got["running"]
    assert apart["dealer_id"] == "G-03" and apart["running"]["support_id"] == "G3-rep" and apart["running"]["days_left"] == 4
    north = [r["dealer_id"] for r in ranking(region="华北")["ranked"]]
    assert north == [d for d, _ in expected() if int(d[2:]) % 2] and len(ranking(limit=3)["ranked"]) == 3
