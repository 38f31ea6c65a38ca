"""The dealer file's weekly series (notify/weekly.py): weeks in the policy's time zone, the
baseline over the weeks the policy names since the first sale, the monthly target pro-rated."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from services.notify.dealers.weekly import week_start, weekly_series

UTC, SHANGHAI = ZoneInfo("UTC"), ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


def test_a_week_starts_on_monday_in_the_policys_time_zone():
    sunday_night_utc = at("2026-03-08", 20)  # Monday 04:00 in Shanghai
    assert week_start(sunday_night_utc, UTC) == dt.date(2026, 3, 2)
    assert week_start(sunday_night_utc, SHANGHAI) == dt.date(2026, 3, 9)


def test_the_baseline_averages_the_named_weeks_since_the_first_sale():
    sales = [(at("2026-02-02"), 400.0), (at("2026-02-09"), 200.0), (at("2026-02-16"), 300.0), (at("2026-02-18"), -100.0)]
    series = weekly_series(sales, {}, at("2026-03-04"), weeks=3, zone=UTC, baseline_weeks=2)
    assert [(w["week_start"], w["net_sales"], w["baseline"]) for w in series] == [
        ("2026-02-16", 200.0, 300.0),  # (400 + 200) / 2
        ("2026-02-23", 0.0, 200.0),  # (200 + 200) / 2: the return counted in its week
        ("2026-03-02", 0.0, 100.0),  # (200 + 0) / 2: a week without sales counts as 0
    ]
    first_weeks = weekly_series(sales, {}, at("2026-02-04"), weeks=1, zone=UTC, baseline_weeks=2)
    assert first_weeks[0]["baseline"] is None  # nothing sold before: no baseline yet
    no_baseline = weekly_series(sales, {}, at("2026-03-04"), weeks=1, zone=UTC, baseline_weeks=0)
    assert no_baseline[0]["baseline"] is None  # the policy names none


def test_a_weeks_target_is_the_monthly_target_spread_over_its_days():
    targets = {"2026-02": 2800.0, "2026-03": 3100.0}  # 100 a day in both months
    (week,) = weekly_series([], targets, at("2026-02-25"), weeks=1, zone=UTC, baseline_weeks=8)
    assert (week["week_start"], week["target"]) == ("2026-02-23", 700.0)  # 6 February days and March 1st
    (january,) = weekly_series([], targets, at("2026-01-14"), weeks=1, zone=UTC, baseline_weeks=8)
    assert january["target"] is None
