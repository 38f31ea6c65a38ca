"""`dealerwatch backtest` and `dealerwatch explain`: replay a v1 event file through the same
core, engine and clock as the live service (see judge.py), with event time as the clock.

Each dealer is judged at its events and at its deadlines in between, in time order; the others
are not moved by its events (an event dated tomorrow judges its own dealer only, as live). At
the end every dealer is judged up to `--now` (default: the newest event). Output lines are in
the order judgements are made: each dealer's in time order."""

from __future__ import annotations

import collections
import datetime as dt
import json
import sys
from collections.abc import Iterator
from typing import IO, Any, Protocol

from pydantic import ValidationError

from services.common import support as priority
from services.common.alerts import AlertSignal
from services.common.events import Event, parse_event
from services.common.limits import LimitReached

from . import expressions as ex
from . import incentives, network, support
from .core import RulesCore, TooLate
from .judge import Judge, Refused
from .keys import EpisodeKey
from .policy import Policy
from .promotions import promotion_measures
from .signals import Output
from .state import ts, utc


class Part(Protocol):
    """The lines of a history one process judges (`backtest --jobs`: toolbox/jobs.py)."""

    newest: dt.datetime | None  # the newest event time of every line read, its own or not

    def takes(self, line: str) -> bool: ...


def read_events(path: str, dealer: str | None = None, part: Part | None = None) -> Iterator[tuple[int, Event | str]]:
    """(line number, event or error text) for each non-empty line of an NDJSON file (of a part)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or (part is not None and not part.takes(line)):
                continue
            try:
                event = parse_event(line)
            except ValidationError as exc:
                yield number, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)[:3])
                continue
            if dealer is None or event.dealer_id == dealer:
                yield number, event


def alert_line(signal: AlertSignal) -> dict[str, Any]:
    return {
        "rule_id": signal.rule_id,
        "dealer_id": signal.dealer_id,
        "dealer_name": signal.dealer_name,
        "subject": signal.subject,
        "severity": signal.severity,
        "state": "open" if signal.state == "firing" else "resolved",
        "at": signal.at.isoformat(),
        "opened_at": signal.opened_at.isoformat(),
        "owner": signal.owner,
        "summary": signal.summary,
        "alert_id": signal.alert_id,
    }


def backtest(
    path: str,
    policy: Policy,
    now: dt.datetime | None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    *,
    judge_all_at_end: bool = True,
    summarize: bool = True,
    part: Part | None = None,
) -> dict[str, Any]:
    """judge_all_at_end: False to stop where the live clock stands at `now` (deadlines up to it,
    no extra judgement of every dealer at `now`): what a running stack has judged by then.
    summarize: False to leave the summary to the caller (a part of `--jobs`). part: judge only
    its lines; `now` is then the newest event of the whole file, as every part sees it."""
    out, err = out or sys.stdout, err or sys.stderr
    core = RulesCore(policy, alerts_only=True)
    judge = Judge(core)
    opened: collections.Counter[tuple[str, str]] = collections.Counter()
    problems: collections.Counter[str] = collections.Counter()
    total = 0
    if err.isatty():  # for the progress bar
        with open(path, encoding="utf-8") as handle:
            total = sum(1 for line in handle if line.strip())
    last = None

    def emit(outputs: list[Output]) -> None:
        for output in outputs:
            if not isinstance(output, AlertSignal):
                continue  # evaluations and standings: the dealer file's, not alerts
            if output.state == "resolved" or output.firing_count == 1:
                out.write(json.dumps(alert_line(output), ensure_ascii=False) + "\n")
                if output.state == "firing":
                    opened[(output.rule_id, output.severity)] += 1

    for done, (number, item) in enumerate(read_events(path, part=part), start=1):
        if isinstance(item, str):
            problems["invalid"] += 1
            err.write(f"{path}:{number}: skipped, not a valid event: {item}\n")
            continue
        try:
            outputs, counted = judge.handle(item)
        except Refused as exc:
            emit(exc.outputs)
            problems[
                "too late"
                if isinstance(exc.cause, TooLate)
                else "over a limit"
                if isinstance(exc.cause, LimitReached)
                else "failed"
            ] += 1
            err.write(f"{path}:{number}: skipped: {exc}\n")
            continue
        problems["duplicate"] += 0 if counted else 1
        last = max(last or item.occurred_at, item.occurred_at)
        emit(outputs)
        if err.isatty() and (done % 2000 == 0 or done == total):
            width = 30
            filled = int(width * done / max(total, 1))
            err.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} events")
    if err.isatty():
        err.write("\n")
    end = now or (last if part is None else part.newest)
    if end is not None:
        emit(judge.finish(ts(end)) if judge_all_at_end else judge.advance(ts(end)))
    for aside in judge.set_aside.values():
        problems["dealers set aside"] += 1
        err.write(f"dealer {aside.dealer_id}: judging at {utc(aside.at).isoformat()} failed ({aside.reason}); set aside\n")
    if summarize:
        summary(opened, problems, len(core.states), err)
    core.close()
    return {"opened": dict(opened), "problems": dict(problems), "dealers": len(core.states)}


def summary(opened: collections.Counter[tuple[str, str]], problems: collections.Counter[str], dealers: int, err: IO[str]) -> None:
    err.write(f"\n{'rule':<30} {'severity':<9} alerts\n")
    for (rule_id, severity), count in sorted(opened.items()):
        err.write(f"{rule_id:<30} {severity:<9} {count:>6}\n")
    err.write(f"{'total':<40} {sum(opened.values()):>6}   ({dealers} dealers)\n")
    for kind, count in sorted(problems.items()):
        if count:
            err.write(f"skipped ({kind}): {count}\n")


def explain(path: str, policy: Policy, dealer: str, at: dt.datetime | None, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    core = RulesCore(policy)
    judge = Judge(core)
    last = None
    for _, item in read_events(path, dealer):
        if isinstance(item, str):
            continue
        try:
            judge.handle(item)
        except Refused:
            continue
        last = max(last or item.occurred_at, item.occurred_at)
    if dealer not in core.states:
        out.write(f"no events for dealer {dealer!r} in {path}\n")
        core.close()
        return 1
    moment = at or last
    assert moment is not None  # the dealer had events
    t = ts(moment)
    judge.advance(t)
    values = core.measures(dealer, t)
    out.write(f"dealer {dealer} at {moment.isoformat()} (policy {policy.version})\n\nmeasures\n")
    for name in policy.measures:
        value = values.get(name)
        out.write(f"  {name:<30} {'undefined' if value is None else f'{value:,.4f}'}\n")
    out.write("\nrules\n")
    for rule in policy.scoped("dealer"):
        holds = ex.holds(rule.condition, values)
        out.write(f"  {rule.id:<30} {'FIRES' if holds else 'quiet'}   when {' '.join(rule.spec.when.split())}\n")
        for line in distances(rule.condition, values):
            out.write(f"      {line}\n")
    for scope in network.SCOPES:
        rules = policy.scoped(scope)
        for subject_id, subject in network.subjects(core.states[dealer], scope, t, policy.calendar).items() if rules else ():
            out.write(f"\n{scope} {subject_id}\n")
            for rule in rules:
                holds = bool(subject.values) and ex.holds(rule.condition, subject.values)
                out.write(f"  {rule.id:<30} {'FIRES' if holds else 'quiet'}   when {' '.join(rule.spec.when.split())}\n")
                for line in distances(rule.condition, subject.values) if subject.values else [f"{scope} closed or done"]:
                    out.write(f"      {line}\n")
    state = core.states[dealer]
    for promotion_id, promotion in state.promotions.items():
        values = promotion_measures(promotion, state, t, policy.calendar)
        _explain_subject(
            out, f"promotion {promotion_id}", policy.scoped("promotion"), values, "event rules: judged on their events"
        )
    for support_id, found in (state.supports or {}).items():
        values = support.measures(found, state, t, policy.calendar)
        _explain_subject(
            out, f"support {support_id} ({found.kind})", policy.scoped(support.SCOPE), values, "judged on its events"
        )
    for subject_id, (program, period) in incentives.current(policy.spec.incentives, t, policy.calendar).items():
        values = incentives.measures(state, program, period, policy.calendar.local(t).date())
        _explain_subject(out, f"incentive {subject_id}", policy.scoped(incentives.SCOPE), values, "")
    if policy.spec.support is not None:
        names, weights = policy.spec.support.measures, policy.spec.support.weights
        target, baseline = (
            priority.target_gap(values_of_dealer := core.measures(dealer, t), names),
            priority.baseline_gap(values_of_dealer, names),
        )
        severities = [r.spec.severity for key in state.episodes for r in policy.rules if r.id == EpisodeKey.parse(key).rule_id]
        out.write(
            f"\nsupport priority (the ranking; notify weighs the alerts open there)\n"
            f"  target_gap   = max(0, {names.target} x {names.elapsed} - {names.to_date}) = {target:,.2f}\n"
            f"  baseline_gap = max(0, {names.baseline} - {names.recent}) = {baseline:,.2f}\n"
            f"  open episodes here: {len(severities)} ({', '.join(severities) or 'none'})\n"
            f"  score        = (target_gap + baseline_gap) x (1 + weights) = "
            f"{priority.score(target, baseline, severities, weights.model_dump()):,.2f}\n"
        )
        running = support.running(state, t, policy.calendar) if state.supports else None
        if running is not None:
            out.write(f"  support {running.support_id} running, {running.days_left} day(s) left: listed apart\n")
    core.close()
    return 0


def _explain_subject(out: IO[str], title: str, rules: tuple[Any, ...], values: dict[str, float], note: str) -> None:
    out.write(f"\n{title}\n")
    for name, value in sorted(values.items()):
        out.write(f"  {name:<30} {value:,.4f}\n")
    for rule in rules:
        holds = bool(values) and ex.holds(rule.condition, values)
        kind = f" [{rule.spec.kind}: {', '.join(rule.spec.trigger)}]" if rule.spec.kind == "event" else ""
        out.write(f"  {rule.id:<30} {'FIRES' if holds else 'quiet'}{kind}   when {' '.join(rule.spec.when.split())}\n")
        for line in distances(rule.condition, values) if values else [note or "over"]:
            out.write(f"      {line}\n")


def distances(condition: ex.Condition, values: dict[str, float]) -> list[str]:
    lines: list[str] = []
    stack = [ex.push_negations(condition)]
    while stack:
        node = stack.pop()
        if isinstance(node, ex.Logic):
            stack.extend(reversed(node.items))
            continue
        assert isinstance(node, ex.Compare)  # no `not` is left
        left, right = ex.value_of(node.left, values), ex.value_of(node.right, values)
        text = ex.render(node)
        if left is None or right is None:
            lines.append(
                f"{text}: undefined ({', '.join(sorted(m for m in ex.measures_of(node) if m not in values))} not known yet)"
            )
        else:
            verdict = "holds" if ex.holds(node, values) else "does not hold"
            lines.append(f"{text}: {left:,.4f} vs {right:,.4f}, {verdict} (difference {left - right:+,.4f})")
    return lines
