"""`dealerwatch policy diff`: on the fault suite's history, sales-drop at 0.8 instead of 0.7
lists exactly the alerts a backtest of each policy shows apart, each with the other policy's
condition on its measures."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

from histories import write
from network import network_history

from services.cli import main
from services.rules import policy as policies
from services.rules.backtest import backtest, read_events
from services.rules.toolbox import diff

ROOT = Path(__file__).resolve().parents[2]
OLD = "and sales_7d < 0.7 * sales_baseline_weekly"


def episodes(path: str, policy) -> set[tuple]:
    """(rule, dealer, subject, opened_at, resolved_at) of every alert of a backtest."""
    out = io.StringIO()
    backtest(path, policy, None, out=out, err=io.StringIO())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    resolved = {(a["rule_id"], a["dealer_id"], a["subject"], a["opened_at"]): a["at"] for a in lines if a["state"] == "resolved"}
    return {
        (
            a["rule_id"],
            a["dealer_id"],
            a["subject"],
            a["opened_at"],
            resolved.get((a["rule_id"], a["dealer_id"], a["subject"], a["opened_at"])),
        )
        for a in lines
        if a["state"] == "open"
    }


def sides(found: dict) -> tuple[set[tuple], set[tuple]]:
    old, new = set(), set()
    for rule in found["rules"]:
        for dealer in rule["dealers"]:
            at = (rule["rule_id"], dealer["dealer_id"])
            old |= {(*at, e["subject"], e["opened_at"], e["resolved_at"]) for e in dealer["only_old"]}
            new |= {(*at, e["subject"], e["opened_at"], e["resolved_at"]) for e in dealer["only_new"]}
            old |= {(*at, p["subject"], p["old"]["opened_at"], p["old"]["resolved_at"]) for p in dealer["moved"]}
            new |= {(*at, p["subject"], p["new"]["opened_at"], p["new"]["resolved_at"]) for p in dealer["moved"]}
    return old, new


def test_the_diff_lists_exactly_what_the_two_backtests_show_apart(tmp_path, capsys):
    path = write(tmp_path / "events.ndjson", network_history(dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    text = (ROOT / "policies" / "default.yaml").read_text(encoding="utf-8")
    assert OLD in text
    changed = tmp_path / "new.yaml"
    changed.write_text(text.replace(OLD, OLD.replace("0.7", "0.8")), encoding="utf-8")
    old, new = policies.load(ROOT / "policies" / "default.yaml"), policies.load(changed)

    before, after = episodes(path, old), episodes(path, new)
    assert before - after or after - before, "the change makes a difference on this history"
    events = [item for _, item in read_events(path) if not isinstance(item, str)]
    found = diff.compare(events, old, new, examples=10_000)
    assert sides(found) == (before - after, after - before)
    assert {rule["rule_id"] for rule in found["rules"]} == {"sales-drop"}
    assert found["alerts"]["old"] == len(before) and found["alerts"]["new"] == len(after)
    entry = next(e for r in found["rules"] for d in r["dealers"] for e in d["only_new"])
    # an alert only the new policy raises: the old condition does not hold on its measures
    assert entry["other"]["policy"] == "old" and entry["other"]["holds"] is False
    assert any(
        "sales_7d < (0.7 * sales_baseline_weekly)" in line and "does not hold" in line for line in entry["other"]["comparisons"]
    )

    assert main(["policy", "diff", str(ROOT / "policies" / "default.yaml"), str(changed), path]) == 0
    report = capsys.readouterr().out
    counts = found["rules"][0]
    assert f"| sales-drop | {counts['only_old']} | {counts['only_new']} | {counts['moved']} |" in report
    assert (
        "- old: `first_seen_days >= 63 and sales_baseline_weekly >= 1000 and sales_7d < 0.7 * sales_baseline_weekly` "
        "does not hold" in report
    )
    assert main(["policy", "diff", str(ROOT / "policies" / "default.yaml"), str(changed), path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["alerts"] == found["alerts"]


def test_the_same_policy_makes_no_difference(tmp_path):
    path = write(tmp_path / "events.ndjson", network_history(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))[:3000])
    policy = policies.load(ROOT / "policies" / "default.yaml")
    events = [item for _, item in read_events(path) if not isinstance(item, str)]
    found = diff.compare(events, policy, policy)
    assert found["rules"] == [] and found["alerts"]["same"] == found["alerts"]["old"] > 0
    assert "No alert differs." in diff.markdown(found)
