"""`dealerwatch policy test FILE...`: run each case of a test file on its policy; a failure says
what was expected, what happened, and the measures and the condition at the time of the miss."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from services.common.durations import seconds
from services.common.events import Event, parse_event
from services.common.yamlsource import FileError, Lines, read, validated

from .. import expressions as ex
from ..backtest import distances
from ..policy import Policy
from ..policy import load as load_policy
from .cases import MAX_GENERATED, Case, Expected, TestFile, Within
from .replay import Episode, moment, replay, values_at

NOON = dt.time(12)


class TestFileError(FileError):
    """The test file is refused (each problem with its line)."""


@dataclass
class Failure:
    line: int | None
    case: str
    lines: list[str]


def schema() -> dict[str, Any]:
    return TestFile.model_json_schema()


def load(path: str | Path) -> tuple[TestFile, Lines, str]:
    try:
        text, source = read(path)
    except FileError as exc:
        raise TestFileError(exc.source, exc.problems) from None
    spec, lines = validated(text, source, TestFile, TestFileError, shape="a mapping with tests")
    return spec, lines, source


def events_of(case: Case, index: int, policy: Policy, lines: Lines, source: str) -> list[Event]:
    events: list[Event] = []
    problems: list[tuple[int | None, str]] = []
    for number, entry in enumerate(case.events):
        line = lines.get(("tests", index, "events", number))
        if entry.at is not None:
            times = [moment(entry.at, policy, NOON)]
        else:
            assert entry.every is not None and entry.from_ is not None and entry.until is not None
            first, last, step = moment(entry.from_, policy, NOON), moment(entry.until, policy, NOON), seconds(entry.every)
            count = int((last - first).total_seconds() // step) + 1 if last >= first else 0
            if count > MAX_GENERATED:
                problems.append((line, f"generates {count:,} events, more than {MAX_GENERATED:,}"))
                continue
            times = [first + dt.timedelta(seconds=step * k) for k in range(count)]
        for k, at in enumerate(times):
            data = {
                **entry.event,
                "event_id": f"case{index}-{number}-{k}",
                "dealer_id": entry.dealer or case.dealer,
                "occurred_at": at.isoformat(),
            }
            data = {key: str(value) if isinstance(value, float) else value for key, value in data.items()}
            try:
                events.append(parse_event(data))
            except ValidationError as exc:
                reasons = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors(include_url=False)[:3])
                problems.append((line, f"not a valid event: {reasons}"))
                break
    if problems:
        raise TestFileError(source, problems)
    return events


def _within(at: dt.datetime | None, bound: Any, policy: Policy) -> bool:
    if at is None:
        return False
    if isinstance(bound, Within):
        return (bound.after is None or at >= moment(bound.after, policy)) and (
            bound.before is None or at <= moment(bound.before, policy)
        )
    return at == moment(bound, policy)


def _matches(episode: Episode, wanted: Expected, dealer: str, policy: Policy) -> bool:
    if (episode.rule_id, episode.dealer_id) != (wanted.rule, wanted.dealer or dealer):
        return False
    if wanted.subject is not None and episode.subject != wanted.subject:
        return False
    if wanted.opened is not None and not _within(episode.opened_at, wanted.opened, policy):
        return False
    if wanted.resolved is False:
        return episode.resolved_at is None
    return wanted.resolved is None or _within(episode.resolved_at, wanted.resolved, policy)


def _when(bound: Any, policy: Policy) -> str:
    if isinstance(bound, Within):
        parts = [
            f"at or after {moment(bound.after, policy).isoformat()}" if bound.after else "",
            f"at or before {moment(bound.before, policy).isoformat()}" if bound.before else "",
        ]
        return " and ".join(p for p in parts if p) or "at any time"
    return f"at {moment(bound, policy).isoformat()}"


def _describe_expected(wanted: Expected, dealer: str, policy: Policy) -> str:
    text = f"{wanted.rule} for dealer {wanted.dealer or dealer}" + (f", subject {wanted.subject}" if wanted.subject else "")
    if wanted.opened is not None:
        text += f", opened {_when(wanted.opened, policy)}"
    if wanted.resolved is False:
        text += ", still open at now"
    elif wanted.resolved is not None:
        text += f", resolved {_when(wanted.resolved, policy)}"
    return text


def _describe(episode: Episode) -> str:
    subject = f" ({episode.subject})" if episode.subject else ""
    resolved = f"resolved {episode.resolved_at.isoformat()}" if episode.resolved_at else "still open"
    return f"{episode.rule_id} for dealer {episode.dealer_id}{subject}: opened {episode.opened_at.isoformat()}, {resolved}"


def _miss_time(wanted: Expected, near: Episode | None, now: dt.datetime, policy: Policy) -> dt.datetime:
    """Where to look: the end of the first bound the nearest alert missed (its opening, then its
    resolution), or `now`."""
    bound: Any = wanted.opened
    opened_well = near is not None and (wanted.opened is None or _within(near.opened_at, wanted.opened, policy))
    if opened_well and wanted.resolved not in (None, False):
        bound = wanted.resolved
    if opened_well and wanted.resolved is False and near is not None and near.resolved_at is not None:
        return near.resolved_at
    if isinstance(bound, Within):
        bound = bound.before or bound.after
    return now if bound is None else min(moment(bound, policy), now)


def _why(events: list[Event], policy: Policy, rule_id: str, dealer: str, subject: str | None, at: dt.datetime) -> list[str]:
    rule = policy.rule(rule_id)
    values = values_at(events, policy, rule, dealer, subject, at)
    head = f"at {at.isoformat()}, when {' '.join(rule.spec.when.split())}:"
    if values is None:
        return [head, f"  no {rule.spec.scope} {subject or dealer} then"]
    read_ = sorted(ex.measures_of(rule.condition))
    shown = ", ".join(f"{name}={values[name]:,.4f}" if name in values else f"{name} undefined" for name in read_)
    return [head, *(f"  {line}" for line in distances(rule.condition, values)), f"  measures: {shown}"]


def run_case(case: Case, index: int, policy: Policy, lines: Lines, source: str, shown: list[str] | None = None) -> list[str]:
    """The lines of the case's failure report (empty: it passed); `shown` gets every alert raised."""
    events = events_of(case, index, policy, lines, source)
    now = moment(case.now, policy)
    episodes, refused = replay(events, policy, now)
    if shown is not None:
        shown += [_describe(e) for e in episodes] or ["no alert"]
    report: list[str] = [f"refused event {text}" for text in refused]
    used: set[int] = set()
    for wanted in case.expect:
        found = next((k for k, e in enumerate(episodes) if k not in used and _matches(e, wanted, case.dealer, policy)), None)
        if found is not None:
            used.add(found)
            continue
        dealer = wanted.dealer or case.dealer
        near = [e for e in episodes if e.key[:2] == (wanted.rule, dealer) and wanted.subject in (None, e.subject)]
        report.append(f"expected: {_describe_expected(wanted, case.dealer, policy)}")
        report += [f"happened: {_describe(e)}" for e in near] or [f"happened: no {wanted.rule} alert for dealer {dealer}"]
        subject = wanted.subject or (near[0].subject if near else None)
        at = _miss_time(wanted, near[0] if near else None, now, policy)
        report += _why(events, policy, wanted.rule, dealer, subject, at)
    named = {wanted.rule for wanted in case.expect}
    quiet = {r.id for r in policy.rules} - named if case.quiet == "others" else set(case.quiet)
    for k, episode in enumerate(episodes):
        if k in used or (episode.rule_id not in named and episode.rule_id not in quiet):
            continue
        reason = "not expected" if episode.rule_id in named else "a quiet rule raised"
        report.append(f"{reason}: {_describe(episode)}")
        report += _why(events, policy, episode.rule_id, episode.dealer_id, episode.subject, episode.opened_at)
    return report


def _unknown_rules(spec: TestFile, policy: Policy, lines: Lines, source: str) -> None:
    known = {rule.id for rule in policy.rules}
    problems: list[tuple[int | None, str]] = []
    for index, case in enumerate(spec.tests):
        for number, wanted in enumerate(case.expect):
            if wanted.rule not in known:
                problems.append((lines.get(("tests", index, "expect", number, "rule")), f"no rule {wanted.rule!r} in the policy"))
        for number, rule_id in enumerate(case.quiet if isinstance(case.quiet, list) else []):
            if rule_id not in known:
                problems.append((lines.get(("tests", index, "quiet", number)), f"no rule {rule_id!r} in the policy"))
    if problems:
        raise TestFileError(source, problems)


def run_file(path: str | Path, out: IO[str], policy: Policy | None = None, verbose: bool = False) -> tuple[int, list[Failure]]:
    """(cases run, failures); verbose: every case's alerts. Raises FileError for a test or policy
    file that is refused."""
    spec, lines, source = load(path)
    policy = policy or load_policy(spec.policy_path(path))
    _unknown_rules(spec, policy, lines, source)
    failures: list[Failure] = []
    for index, case in enumerate(spec.tests):
        shown: list[str] | None = [] if verbose else None
        report = run_case(case, index, policy, lines, source, shown)
        if shown is not None:
            out.write(f"{source}:{lines.get(('tests', index)) or 1}: {'FAIL' if report else 'ok'} {case.name}\n")
            out.writelines(f"    raised: {line}\n" for line in shown)
        if report:
            failures.append(Failure(lines.get(("tests", index)), case.name, report))
            out.write(f"{source}:{lines.get(('tests', index)) or 1}: FAIL {case.name}\n")
            out.writelines(f"    {line}\n" for line in report)
    return len(spec.tests), failures


def main(
    paths: list[str], out: IO[str] | None = None, err: IO[str] | None = None, as_json: bool = False, verbose: bool = False
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    total, failed = 0, 0
    results: list[dict[str, Any]] = []
    for path in paths:
        try:
            count, failures = run_file(path, err if as_json else out, verbose=verbose)
        except FileError as exc:
            err.writelines(f"{line}\n" for line in exc.lines())
            return 1
        total, failed = total + count, failed + len(failures)
        results += [{"file": path, "line": f.line, "case": f.case, "report": f.lines} for f in failures]
    if as_json:
        out.write(json.dumps({"cases": total, "failed": results}, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(f"{total} cases, {total - failed} passed, {failed} failed\n")
    return 1 if failed else 0
