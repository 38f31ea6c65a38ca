"""`dealerwatch policy test`: the shipped tests of the default policy pass, and a broken test, a
broken policy or a broken test file fails with a report a rule author can act on."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml

from services.cli import main
from services.rules import policy as policies
from services.rules.toolbox import runner

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "policies" / "default.test.yaml"


def _run(path: Path, policy_path: Path | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = runner.main([str(path)], out=out, err=out)
    return code, out.getvalue()


def test_the_shipped_tests_pass_and_cover_every_rule_firing_quiet_and_resolving(capsys):
    assert main(["policy", "test", str(SHIPPED)]) == 0
    assert "0 failed" in capsys.readouterr().out
    policy = policies.load(ROOT / "policies" / "default.yaml")
    spec, _, _ = runner.load(SHIPPED)
    fired = {wanted.rule for case in spec.tests for wanted in case.expect}
    resolved = {wanted.rule for case in spec.tests for wanted in case.expect if wanted.resolved not in (None, False)}
    quiet = set()
    for case in spec.tests:
        named = {wanted.rule for wanted in case.expect}
        quiet |= {r.id for r in policy.rules} - named if case.quiet == "others" else set(case.quiet)
    every = {rule.id for rule in policy.rules}
    conditions = {rule.id for rule in policy.rules if rule.spec.kind == "condition"}
    assert fired == every
    assert quiet == every
    assert resolved == conditions


def _broken(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "default.test.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (tmp_path / "default.yaml").write_text((ROOT / "policies" / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_a_wrong_expectation_fails_with_what_was_expected_what_happened_and_why(tmp_path):
    def later(data):  # sales-drop expected to open a week after it does
        data["tests"][0]["expect"][0]["opened"] = {"after": "2026-03-22", "before": "2026-03-23"}

    code, report = _run(_broken(tmp_path, later))
    assert code == 1
    assert "FAIL sales-drop opens when a week falls below 70%" in report
    assert "opened at or after 2026-03-22T00:00:00+00:00 and at or before 2026-03-23" in report
    assert "happened: sales-drop for dealer D1: opened 2026-03-15T12:00:00+00:00, resolved 2026-04-02T12:00:00+00:00" in report
    # the condition at the end of the bound, with each comparison's values
    assert "at 2026-03-23T00:00:00+00:00, when first_seen_days >= 63" in report
    assert "sales_7d < (0.7 * sales_baseline_weekly): 3,500.0000 vs 4,681.2500, holds" in report
    assert "1 failed" in report


def test_a_quiet_rule_that_fires_is_reported_with_the_measures_where_it_opened(tmp_path):
    def drop_more(data):  # the quiet case's sales go below 70% after all
        data["tests"][1]["events"][-1]["event"]["amount"] = 600

    code, report = _run(_broken(tmp_path, drop_more))
    assert code == 1
    # 7,000 a week before, then 600 a day: 5 days of it fall under 70% (4 x 1,000 + 3 x 600 does not)
    assert "a quiet rule raised: sales-drop for dealer D1: opened 2026-03-16T12:00:00+00:00" in report
    assert "measures: first_seen_days=74.0000, sales_7d=4,600.0000, sales_baseline_weekly=7,000.0000" in report


def test_a_changed_threshold_in_the_policy_fails_the_shipped_tests(tmp_path):
    path = _broken(tmp_path, lambda data: None)
    policy_file = tmp_path / "default.yaml"
    text = policy_file.read_text(encoding="utf-8")
    assert "days_since_sale > 21" in text
    policy_file.write_text(text.replace("days_since_sale > 21", "days_since_sale > 28"), encoding="utf-8")
    code, report = _run(path)
    assert code == 1
    assert "FAIL dealer-inactive opens 21 days after the last sale" in report
    assert "happened: dealer-inactive for dealer D1: opened 2026-02-17T12:00:01+00:00" in report
    assert "at 2026-02-10T12:01:00+00:00, when days_since_sale > 28:" in report
    assert "days_since_sale > 28.0: 21.0007 vs 28.0000, does not hold" in report


def test_a_broken_test_file_is_refused_with_line_numbers(tmp_path):
    path = tmp_path / "default.test.yaml"
    (tmp_path / "default.yaml").write_text((ROOT / "policies" / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    path.write_text(
        "tests:\n"
        "  - name: a typo in a rule id would pass for ever\n"
        "    now: 2026-02-01\n"
        "    events:\n"
        "      - {at: 2026-01-01, event: {type: sale, sku: A, quantity: 1, amount: 10}}\n"
        "    quiet: [sales-dorp]\n"
        "  - name: an event that is not one\n"
        "    now: 2026-02-01\n"
        "    events:\n"
        "      - {at: 2026-01-01, event: {type: sale, sku: A, quantity: 0, amount: 10}}\n",
        encoding="utf-8",
    )
    code, report = _run(path)
    assert code == 1
    assert f"{path}:6: no rule 'sales-dorp' in the policy" in report
    path.write_text(path.read_text().replace("sales-dorp", "sales-drop"), encoding="utf-8")
    code, report = _run(path)
    assert code == 1
    assert f"{path}:10: not a valid event: quantity: Value error, quantity must not be 0" in report
    path.write_text("tests:\n  - name: x\n    now: 2026-02-01\n    events: [{at: 2026-01-01, every: 1d, event: {}}]\n")
    code, report = _run(path)
    assert code == 1 and f"{path}:4:" in report and "give either `at`, or `every`" in report


def test_the_schema_describes_the_format(capsys):
    assert main(["policy", "test", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["required"] == ["tests"]
    assert {"Case", "EventEntry", "Expected", "Within"} <= set(schema["$defs"])
