"""`dealerwatch demo [--url INGEST] [--board NOTIFY]` (`make demo`): a generated dealer network
posted to a running stack through ingest's public API, so that a newcomer sees the board full.

36 registered dealers in three regions (and one trading unregistered), four outlets each, visit
plans carried out, monthly targets, an effective promotion here and there, 100 days of history
up to now (a quarter and more: the 90- and 92-day rules can speak), and one injected problem of
every default rule's kind on its own dealer (`PROBLEMS`). Deterministic for a given end."""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

DAY = dt.timedelta(days=1)
DAYS = 100
REGIONS = ("华东", "华北", "华南")
CITIES = ("苏州", "杭州", "宁波", "温州", "济南", "青岛", "石家庄", "天津", "广州", "东莞", "佛山", "泉州")
Event = dict[str, Any]


class Network:
    def __init__(self, end: dt.datetime, seed: int = 7):
        self.end = end.replace(microsecond=0)
        self.start = self.end - DAYS * DAY
        self.rng = random.Random(seed)
        self.events: list[Event] = []
        self._n = 0

    def event(self, event_type: str, dealer: str, at: dt.datetime, /, **fields: Any) -> Event:
        self._n += 1
        event = {
            "event_id": f"demo-{self._n:06d}",
            "type": event_type,
            "dealer_id": dealer,
            "occurred_at": at.isoformat(),
            "source": "demo",
        }
        self.events.append({**event, **{k: v for k, v in fields.items() if v is not None}})
        return self.events[-1]

    def day(self, n: int, hour: int = 10) -> dt.datetime:
        """Day n of the history at a local hour (n = DAYS - 1 is yesterday)."""
        return dt.datetime.combine((self.start + n * DAY).date(), dt.time(hour), dt.UTC)

    def dealer(self, number: int, *, registered: bool = True, problem: str | None = None) -> str:
        dealer_id = f"D-{number:02d}"
        region = REGIONS[number % 3]
        name = f"{CITIES[number % len(CITIES)]}{'鑫诚华盛恒达'[number % 6]}缝纫设备有限公司"
        if registered:
            self.event(
                "dealer.registered",
                dealer_id,
                self.day(0, 8),
                name=name,
                region=region,
                tier="ABC"[number % 3],
                contact_name="王经理",
                phone=f"+86 21 5555-{number:04d}",
            )
        else:
            self.event("sale", dealer_id, self.day(0, 9), region=region, sku="JK-9100", quantity=1, amount="900")
        for outlet in range(1, 5):
            self.event(
                "outlet.registered",
                dealer_id,
                self.day(0, 8),
                outlet_id=f"{dealer_id}-O{outlet}",
                name=f"{CITIES[(number + outlet) % len(CITIES)]}服装厂{outlet}号",
                level="retail" if outlet > 1 else "sub-distributor",
            )
        return dealer_id

    def sales(self, dealer: str, daily: float, days: range, outlets: tuple[int, ...] = (1, 2, 3, 4)) -> float:
        total = 0.0
        for n in days:
            if n % 2:  # every other day, each time to the next outlet
                continue
            amount = round(daily * 2 * self.rng.uniform(0.9, 1.1), 2)
            outlet = outlets[(n // 2) % len(outlets)]
            self.event(
                "sale",
                dealer,
                self.day(n, 11),
                outlet_id=f"{dealer}-O{outlet}",
                sku="JK-9100",
                quantity=2,
                amount=f"{amount:.2f}",
            )
            total += amount
        return total

    def visits(self, dealer: str, every: int, until: int = DAYS, leadership: int | None = 55, symposium: int | None = 45) -> None:
        for n in range(3, until, every):
            self.event("visit", dealer, self.day(n, 15), visitor_id="rep-zhang", role="rep", kind="routine")
        if leadership is not None:
            self.event("visit", dealer, self.day(leadership, 16), visitor_id="vp-li", role="executive", kind="leadership")
        if symposium is not None:
            self.event("visit", dealer, self.day(symposium, 16), visitor_id="vp-li", role="executive", kind="symposium")

    def targets(
        self, dealer: str, monthly: float, outlets: int = 3, coverage: str | None = None, from_start: bool = False
    ) -> None:
        """Monthly targets: from the first whole quarter of the history (a month it saw only the end
        of would be behind its target), or from its first month (`from_start`)."""
        month = self.start.date().replace(day=1)
        while not from_start and (month < self.start.date() or month.month % 3 != 1):
            month = (month + 32 * DAY).replace(day=1)
        while month <= self.end.date():
            self.event(
                "target.set",
                dealer,
                self.day(0, 7),
                period=month.strftime("%Y-%m"),
                sales_target=f"{monthly:.0f}",
                active_outlets_target=outlets,
                outlet_coverage_target=coverage,
            )
            month = (month + 32 * DAY).replace(day=1)

    def plan(self, dealer: str, plan_id: str, day: int, carried_out: bool = True, kind: str = "routine") -> None:
        planned_for = self.day(day).date()
        self.event(
            "visit.planned",
            dealer,
            self.day(day - 10, 9),
            plan_id=plan_id,
            planned_for=planned_for.isoformat(),
            visitor_id="rep-zhang",
            kind=kind,
            outlet_id=f"{dealer}-O2",
        )
        if carried_out:
            self.event(
                "visit",
                dealer,
                self.day(day, 14),
                visitor_id="rep-zhang",
                role="rep",
                kind=kind,
                plan_id=plan_id,
                outlet_id=f"{dealer}-O2",
            )

    def support(
        self, dealer: str, support_id: str, first: int, days: int, *, kind: str, cost: str, share: str, reason: str | None = None
    ) -> None:
        """Support decided the day before its first day, for `days` days."""
        starts = self.day(first).date()
        self.event(
            "support.dispatched",
            dealer,
            self.day(first - 1, 9),
            support_id=support_id,
            kind=kind,
            starts_on=starts.isoformat(),
            ends_on=(starts + (days - 1) * DAY).isoformat(),
            cost=cost,
            dealer_share=share,
            owner="区域经理-赵",
            reason=reason,
        )

    def promotion(
        self,
        dealer: str,
        promotion_id: str,
        first: int,
        days: int,
        *,
        budget: float = 5000,
        spend: float = 1000,
        approved: bool = True,
        ended: bool = True,
        expected: float | None = None,
        spend_before_approval: bool = False,
        boost: float = 0,
    ) -> None:
        starts, ends = self.day(first).date(), self.day(first + days - 1).date()
        self.event(
            "promotion.planned",
            dealer,
            self.day(first - 5, 9),
            promotion_id=promotion_id,
            budget=f"{budget:.0f}",
            starts_on=starts.isoformat(),
            ends_on=ends.isoformat(),
            owner="市场部-陈",
            description="秋季以旧换新",
            expected_sales=None if expected is None else f"{expected:.0f}",
        )
        if spend_before_approval:
            self.event("promotion.spend", dealer, self.day(first - 4, 10), promotion_id=promotion_id, amount=f"{spend:.0f}")
        if approved:
            self.event("promotion.approved", dealer, self.day(first - 3, 9), promotion_id=promotion_id, approved_by="销售总监-刘")
        if spend and not spend_before_approval:
            self.event("promotion.spend", dealer, self.day(first + 1, 10), promotion_id=promotion_id, amount=f"{spend:.0f}")
        for n in range(first, first + days) if boost else ():  # what the promotion brought on top
            self.event(
                "sale", dealer, self.day(n, 13), outlet_id=f"{dealer}-O1", sku="JK-7700", quantity=1, amount=f"{boost:.0f}"
            )
        if ended and first + days < DAYS:
            self.event("promotion.ended", dealer, self.day(first + days, 9), promotion_id=promotion_id)


def _normal(net: Network, number: int, **changes: Any) -> str:
    """A dealer that needs nothing: steady sales to its four outlets, visits, targets it meets."""
    dealer = net.dealer(number)
    daily = changes.get("daily", net.rng.choice([800, 1200, 1600]))
    net.sales(dealer, daily, range(DAYS))
    net.visits(dealer, 9)
    net.targets(dealer, daily * 30 * 0.8)
    net.plan(dealer, f"{dealer}-PL1", DAYS - 20)
    return dealer


PROBLEMS: dict[str, Callable[[Network, int], None]] = {}


def problem(rule: str) -> Callable[[Callable[[Network, int], None]], Callable[[Network, int], None]]:
    def register(make: Callable[[Network, int], None]) -> Callable[[Network, int], None]:
        PROBLEMS[rule] = make
        return make

    return register


@problem("sales-drop")
def _sales_drop(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1500, range(DAYS - 7))
    net.sales(dealer, 200, range(DAYS - 7, DAYS))
    net.visits(dealer, 9)


@problem("dealer-inactive")
def _inactive(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS - 26))
    net.visits(dealer, 9)


@problem("target-pace")
def _behind_target(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS))
    net.visits(dealer, 9)
    net.targets(dealer, 90000, from_start=True)  # three times its pace, every month


@problem("distribution-shrink")
def _shrink(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS))
    net.visits(dealer, 9)
    net.targets(dealer, 20000, outlets=10)


@problem("visit-overdue")
def _not_visited(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS))
    net.visits(dealer, 9, until=DAYS - 40, leadership=20, symposium=30)


@problem("leadership-visit-overdue")
def _no_leadership(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS))
    net.visits(dealer, 9, leadership=None, symposium=None)  # symposium-overdue too


@problem("symposium-overdue")
def _no_symposium(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS))
    net.visits(dealer, 9, symposium=None)


@problem("promotion-unapproved-spend")
def _unapproved(net: Network, n: int) -> None:
    dealer = _normal(net, n, daily=1000)
    net.promotion(dealer, f"{dealer}-P1", DAYS - 30, 14, spend_before_approval=True)


@problem("promotion-over-budget")
def _over_budget(net: Network, n: int) -> None:
    dealer = _normal(net, n, daily=1000)
    net.promotion(dealer, f"{dealer}-P1", DAYS - 30, 14, budget=3000, spend=3600)


@problem("promotion-ineffective")
def _ineffective(net: Network, n: int) -> None:
    dealer = _normal(net, n, daily=1000)
    net.promotion(dealer, f"{dealer}-P1", DAYS - 40, 10, spend=4000)


@problem("planned-visit-missed")
def _missed(net: Network, n: int) -> None:
    dealer = _normal(net, n)
    net.plan(dealer, f"{dealer}-PL2", DAYS - 12, carried_out=False, kind="leadership")


@problem("outlet-silent")
def _silent_outlet(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS), outlets=(1, 2, 3))
    net.visits(dealer, 9)


@problem("distribution-coverage")
def _coverage(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS), outlets=(1,))
    net.visits(dealer, 9)
    net.targets(dealer, 20000, outlets=1, coverage="0.9")


@problem("unregistered-dealer")
def _unregistered(net: Network, n: int) -> None:
    dealer = net.dealer(n, registered=False)
    net.sales(dealer, 1000, range(DAYS))
    net.visits(dealer, 9)


@problem("promotion-below-expectation")
def _below(net: Network, n: int) -> None:
    dealer = _normal(net, n, daily=1000)
    net.promotion(dealer, f"{dealer}-P1", DAYS - 50, 10, spend=500, expected=60000)


@problem("feedback-unanswered")
def _feedback(net: Network, n: int) -> None:
    dealer = _normal(net, n)
    net.event(
        "feedback.received",
        dealer,
        net.day(DAYS - 20, 17),
        feedback_id=f"{dealer}-FB1",
        channel="symposium",
        topic="交货期",
        text="旺季交货太慢，希望缩短到一周",
        received_by="rep-zhang",
    )
    net.event(
        "feedback.received",
        dealer,
        net.day(DAYS - 30, 17),
        feedback_id=f"{dealer}-FB2",
        channel="hotline",
        topic="价格",
        text="二批价格与零售价差太小",
        received_by="rep-zhang",
    )
    net.event("feedback.answered", dealer, net.day(DAYS - 25, 10), feedback_id=f"{dealer}-FB2", by="市场部-陈", text="下月起调整")


@problem("promotion-behind-expectation")
def _behind(net: Network, n: int) -> None:
    dealer = _normal(net, n, daily=800)
    net.promotion(dealer, f"{dealer}-P1", DAYS - 8, 12, spend=0, ended=False, expected=80000)


@problem("support-ineffective")
def _support(net: Network, n: int) -> None:
    dealer = _normal(net, n, daily=1000)
    net.support(dealer, f"{dealer}-S1", DAYS - 30, 14, kind="promoter", cost="9000", share="0.2", reason="sales-drop")


@problem("vehicle-cost-unshared")
def _vehicle(net: Network, n: int) -> None:
    dealer = _normal(net, n)
    net.support(dealer, f"{dealer}-V1", DAYS - 3, 7, kind="vehicle", cost="2400", share="0")


@problem("rebate-tier-within-reach")
def _within_reach(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.visits(dealer, 9)
    today = net.end.date()
    last_quarter_end = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1) - DAY
    for k in range(20):  # 14,000 a day over the quarter's last 20 days: within 10% of 300,000 with 0-15 days left
        day = last_quarter_end - k * DAY
        if day >= net.start.date():
            at = dt.datetime.combine(day, dt.time(11), dt.UTC)
            net.event("sale", dealer, at, outlet_id=f"{dealer}-O{1 + k % 4}", sku="JK-9100", quantity=10, amount="14000")
    net.sales(dealer, 600, range(DAYS))


@problem("rebate-gate-at-risk")
def _gate(net: Network, n: int) -> None:
    dealer = net.dealer(n)
    net.sales(dealer, 1000, range(DAYS))
    net.visits(dealer, 9)
    net.targets(dealer, 150000, from_start=True)


def generate(end: dt.datetime) -> list[Event]:
    net = Network(end)
    number = 1
    for make in PROBLEMS.values():
        make(net, number)
        number += 1
    while number <= 36:
        dealer = _normal(net, number)
        if number % 5 == 0:  # an effective promotion
            net.promotion(dealer, f"{dealer}-P1", DAYS - 45, 10, spend=300, boost=200)
        number += 1
    # dealer by dealer, each in time order: a dealer's whole history arrives before the clock can
    # move it on (a clock judging a dealer up to now between requests would make the rest too late)
    return sorted(net.events, key=lambda e: (e["dealer_id"], e["occurred_at"]))


def post(url: str, events: list[Event], key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for chunk in _requests(events):
        error = ""
        for attempt in range(30):
            try:
                answer = httpx.post(f"{url.rstrip('/')}/v1/events", json=chunk, headers=headers, timeout=60)
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            else:
                if answer.status_code == 202:
                    break
                error = f"{answer.status_code}: {answer.text[:300]}"
                if answer.status_code != 503:
                    raise SystemExit(f"dealerwatch demo: ingest refused the events ({error})")
            time.sleep(1.0 + attempt * 0.5)
        else:
            raise SystemExit(f"dealerwatch demo: ingest at {url} is not answering ({error}); is `make run` running?")


def _requests(events: list[Event], size: int = 500) -> list[list[Event]]:
    """Requests of whole dealers (up to `size` events, a dealer with more in consecutive ones)."""
    requests: list[list[Event]] = [[]]
    for dealer in dict.fromkeys(e["dealer_id"] for e in events):
        own = [e for e in events if e["dealer_id"] == dealer]
        if requests[-1] and len(requests[-1]) + len(own) > size:
            requests.append([])
        for start in range(0, len(own), size):
            requests[-1] += own[start : start + size]
            if len(requests[-1]) >= size:
                requests.append([])
    return [r for r in requests if r]


def run(args: argparse.Namespace) -> int:
    events = generate(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    dealers = len({e["dealer_id"] for e in events})
    print(f"posting {len(events):,} events of {dealers} dealers ({DAYS} days up to now) to {args.url} ...")
    post(args.url, events, args.key)
    print(f"done. Open the board: {args.board}/?status=all  (a dealer's file: {args.board}/?dealer=D-01; where to send")
    print(f"support next: {args.board}/?report=support). Every default rule has a dealer of its own: {', '.join(PROBLEMS)}.")
    return 0


def add(commands: Any) -> None:
    demo = commands.add_parser("demo", help="post a generated dealer network to a running stack (what `make demo` does)")
    demo.add_argument("--url", default="http://127.0.0.1:8080", help="ingest's URL")
    demo.add_argument("--board", default="http://127.0.0.1:8081", help="notify's URL (printed)")
    demo.add_argument("--key", help="an ingest key, in production mode")
    demo.set_defaults(func=run)


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace(url="http://127.0.0.1:8080", board="http://127.0.0.1:8081", key=None)))
