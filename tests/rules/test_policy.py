"""Policy files and the condition language: parse, compile, report errors with lines."""

from __future__ import annotations

import pytest

from services.rules import expressions as ex
from services.rules import policy
from services.rules.engine import Matcher


def test_default_policy_loads_with_every_documented_rule():
    loaded = policy.load("policies/default.yaml")
    assert [r.id for r in loaded.rules] == [
        "sales-drop",
        "dealer-inactive",
        "target-pace",
        "distribution-shrink",
        "visit-overdue",
        "leadership-visit-overdue",
        "symposium-overdue",
        "promotion-unapproved-spend",
        "promotion-over-budget",
        "promotion-ineffective",
        "planned-visit-missed",
        "outlet-silent",
        "distribution-coverage",
        "unregistered-dealer",
        "promotion-below-expectation",
        "feedback-unanswered",
        "promotion-behind-expectation",
        "support-ineffective",
        "vehicle-cost-unshared",
        "rebate-tier-within-reach",
        "rebate-gate-at-risk",
    ]
    assert all(set(r.spec.summaries) == {"en", "zh"} for r in loaded.rules)  # every default rule speaks both
    assert len(loaded.version) == 12 and loaded.spec.timezone == "UTC"


@pytest.mark.parametrize(
    "text",
    [
        "a < 1",
        "not (a > 5 or b < 2) and (c + 1) * 2 <= d",
        "w < 0.7 * b and f >= 63",
        "1 < a",
        "-a > -2.5e3 or not not a == b / 2 - 1",
    ],
)
def test_expressions_round_trip(text):
    parsed = ex.parse(text)
    assert ex.parse(ex.render(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a <", "expected a number or a measure name"),
        ("a < 1 b", "unexpected 'b'"),
        ("a + 1", "expected a comparison"),
        ("(a < 1", "expected ')'"),
        ("a < 1; import os", "unexpected character ';'"),
        ("__import__('os') < 1", "unexpected character"),
    ],
)
def test_expression_errors(text, fragment):
    with pytest.raises(ex.ExpressionError, match=None) as caught:
        ex.parse(text)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("condition", "measures", "expected"),
    [
        ("w < 0.7 * b", {"w": 699.99, "b": 1000}, True),
        ("w < 0.7 * b", {"w": 700, "b": 1000}, False),
        ("not (w < 0.7 * b)", {"w": 700, "b": 1000}, True),
        ("a > 1 or b > 1", {"a": 0, "b": 2}, True),
        ("not (a > 1 or b > 1)", {"a": 0, "b": 0}, True),
        ("a >= (b + 1) / 2", {"a": 1, "b": 1}, True),
        ("1 >= a", {"a": 1}, True),
        ("a != 3 and a == 4", {"a": 4}, True),
        ("a < 0.8 * b * c", {"a": 0, "c": 0.5}, False),  # b undefined: false, not "0 < 0.8 * ? * c"
        ("not (a < 0.8 * b)", {"a": 0}, False),  # undefined stays false under not
        ("a >= 0 or b > 1", {"a": 1}, True),
    ],
)
def test_engine_agrees_with_python_evaluation(condition, measures, expected):
    """durable-rules and our own evaluator must give the same verdict."""
    parsed = ex.parse(condition)
    assert ex.holds(parsed, measures) is expected
    assert (Matcher({"r": ex.to_durable(parsed)}).match(measures) == ["r"]) is expected


BASE = """version: 1
rules:
  - id: r1
    description: d
    severity: warning
    kind: condition
    when: sales_7d < 10
    summary: "{dealer_id} sold {sales_7d:.2f}"
measures:
  sales_7d: {sum: amount, of: sale, window: 7d}
  days_since_visit: {days_since: visit}
"""


INCENTIVE = """incentives:
  - id: q
    period: quarter
    tiers:
      - {from: 300000, rate: 0.02}
      - {from: 500000, rate: 0.03}
"""


@pytest.mark.parametrize(
    ("change", "line", "fragment"),
    [
        (("severity: warning", "severity: warn"), 5, "'warn'"),
        (("when: sales_7d < 10", "when: sales_7d <"), 7, "expected a number"),
        (("when: sales_7d < 10", "when: salez_7d < 10"), 7, "unknown measure salez_7d"),
        (("sum: amount", "sum: amout"), 10, "sale events have no field 'amout'"),
        (("window: 7d", "window: 7 days"), 10, "not a duration"),
        (("sum: amount, of: sale, window: 7d", "sum: amount, of: sale"), 10, "needs a 'window'"),
        (("{days_since: visit}", "{days_since: visit, count: sale}"), 11, "exactly one of"),
        (("{days_since: visit}", "{days_since: vistit}"), 11, "'vistit'"),
        (("kind: condition", "kind: event"), 3, "needs 'trigger'"),
        (("when: sales_7d < 10", "when: 2 * sales_7d < sales_7d + 1"), 7, "must be a single measure name"),
        (("kind: condition", "kind: condition\n    whne: x"), 7, "unknown key 'whne'"),
        (("{sales_7d:.2f}", "{sales_7d.__class__}"), 8, "not a plain name"),
        (("{sales_7d:.2f}", "{sales_7d:{dealer_id.__class__}}"), 8, "a format is an alignment"),  # a spec is not a way in
        (("{sales_7d:.2f}", "{dealer_id!r}"), 8, "'{dealer_id!r}': a format is"),
        (("{sales_7d:.2f}", "{dealer_id:x>300000000}"), 8, "'{dealer_id:x>300000000}': a format is"),  # 300 MB a summary
        (("{sales_7d:.2f}", "{sales_7d:>41,.2f}"), 8, "a width up to 40"),
        (("version: 1", "version: 1\nversion: 2"), 2, "appears twice"),
        (("rules:", "timezone: Mars/Olympus\nrules:"), 2, "unknown time zone"),
        (("    summary:", "   summary:"), 8, "not valid YAML"),
        (('summary: "{dealer_id} sold {sales_7d:.2f}"', 'summary:\n      en: x\n      zh: "{经销商}"'), 10, "summary"),
        (('summary: "{dealer_id} sold {sales_7d:.2f}"', "summary: {fr: x}"), 8, "'en' or 'zh'"),
        (("kind: condition", "kind: condition\n    scope: outlet"), 8, "outlet rules can use outlet_days_since_sale"),
        (("kind: condition", "kind: condition\n    scope: plan"), 8, "plan rules can use plan_overdue_days"),
        (("kind: condition", "kind: condition\n    scope: support"), 3, "support rules are judged on its events"),
        (("kind: condition", "kind: condition\n    scope: incentive"), 8, "incentive rules can use incentive_accrued"),
        (("measures:", "support:\n  measures: {recent: sales_7dd}\nmeasures:"), 10, "support.measures.target: unknown measure"),
        (("measures:", "support:\n  weights: {urgent: 2}\nmeasures:"), 10, "unknown key 'urgent'"),
        (("measures:", INCENTIVE.replace("500000", "200000") + "measures:"), 10, "each higher than the one before"),
        (("measures:", INCENTIVE.replace("quarter", "week") + "measures:"), 11, "'month', 'quarter' or 'year'"),
        (
            ("measures:", INCENTIVE + INCENTIVE.replace("incentives:\n", "") + "measures:"),
            15,
            "incentive id 'q' is used twice (first on line 10)",
        ),
    ],
)
def test_errors_name_the_line(change, line, fragment):
    with pytest.raises(policy.PolicyError) as caught:
        policy.loads(BASE.replace(*change), "p.yaml")
    text = str(caught.value)
    assert text.startswith(f"p.yaml:{line}: "), text
    assert fragment in text


def test_duplicate_rule_ids_are_refused():
    rule = BASE.split("rules:\n")[1].split("measures:")[0]
    doubled = BASE.replace("rules:\n", "rules:\n" + rule)
    with pytest.raises(policy.PolicyError, match="used twice"):
        policy.loads(doubled)


def test_yaml_tags_that_build_objects_are_refused():
    with pytest.raises(policy.PolicyError, match="not valid YAML"):
        policy.loads("!!python/object/apply:os.system ['true']")


def test_policy_check_command(tmp_path, capsys):
    from services.cli import main

    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    assert main(["policy", "check", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("warning", "urgent"))
    with pytest.raises(SystemExit) as exited:
        main(["policy", "check", str(bad)])
    assert exited.value.code == 1
    assert f"{bad}:5:" in capsys.readouterr().err


def test_measures_are_shared_and_builtin_names_are_reserved():
    loaded = policy.loads(BASE.replace("measures:", "measures:\n  sales_mtd: {sum: amount, of: sale, window: month_to_date}"))
    amounts = [source for source in loaded.sources["sale"] if source.field == "amount"]
    assert len(amounts) == 1  # sales_7d, sales_mtd and promotions read one series
    with pytest.raises(policy.PolicyError, match="'first_seen_days' is built in"):
        policy.loads(BASE + "  first_seen_days: {days_since: sale}\n")


def test_expressions_and_yaml_are_bounded_with_the_line_named():
    import time

    deep = BASE.replace("when: sales_7d < 10", "when: " + "(" * 30 + "not " * 3 + "(" * 5 + "sales_7d < 10" + ")" * 35)
    with pytest.raises(policy.PolicyError, match=r"policy\.yaml:\d+: rule 'r1', when: .*nested more than 32 levels"):
        policy.loads(deep, "policy.yaml")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, "
        f"*{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}]\n"
        for n in range(8)
    )
    started = time.monotonic()
    with pytest.raises(policy.PolicyError, match=r"bomb\.yaml:\d+: this part stands for more than 20,000 values"):
        policy.loads(bomb, "bomb.yaml")
    assert time.monotonic() - started < 1.0
    with pytest.raises(policy.PolicyError, match="outside what can be compared"):
        policy.loads(BASE.replace("when: sales_7d < 10", "when: sales_7d < 1e400"), "policy.yaml")
    with pytest.raises(policy.PolicyError, match="longer than 500 words"):  # 400 parentheses
        policy.loads(BASE.replace("when: sales_7d < 10", "when: " + "(" * 400 + "sales_7d < 10" + ")" * 400), "policy.yaml")


def test_the_dealer_files_baseline_is_a_measure_of_the_policy():
    """The board's baseline line is the policy's weekly average, named in `dealer_file`; a policy
    without that section draws none, and a measure that is not a weekly average is refused."""
    assert policy.load("policies/default.yaml").baseline_weeks == 8
    assert policy.loads(BASE).baseline_weeks == 0
    weekly = "  four_weeks: {sum: amount, of: sale, window: {from: 35d, to: 7d}, divide_by: 4}\n"
    with_file = BASE.replace("measures:\n", "measures:\n" + weekly) + "dealer_file:\n  baseline: four_weeks\n  drop_below: 0.5\n"
    assert policy.loads(with_file).baseline_weeks == 4
    daily = with_file.replace("divide_by: 4", "divide_by: 28")
    assert daily.splitlines()[13] == "  baseline: four_weeks"
    with pytest.raises(policy.PolicyError, match=r"policy\.yaml:14: dealer_file\.baseline: 'four_weeks' must be a weekly"):
        policy.loads(daily, "policy.yaml")
