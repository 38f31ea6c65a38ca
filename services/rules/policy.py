"""Policy files: YAML -> validated spec (spec.py) -> compiled policy, with errors that name the line.

A policy is data: it is parsed with yaml.safe_load, validated by pydantic
models, and its conditions are parsed by `expressions` (never `eval`).
"""

from __future__ import annotations

import hashlib
import re
import string
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.dealer_file import MAX_BASELINE_WEEKS
from services.common.durations import DAY, seconds
from services.common.events import EVENT_MODELS
from services.common.yamlsource import FileError, Lines, Problems, read, validated

from . import expressions as ex
from . import incentives, support
from .calendar import Calendar
from .engine import Pattern
from .keys import SourceKey
from .measures import (
    AGES,
    BUILTIN_DEALER_MEASURES,
    NET_SALES,
    PROMOTION_MEASURES,
    DaysSince,
    Latest,
    Source,
    WindowMeasure,
)
from .network import COVERAGE_WINDOW, OUTLET_SALES, SUBJECT_AGES, SUBJECT_MEASURES, SUBJECT_NAMES
from .network import DEALER_MEASURES as NETWORK_MEASURES
from .spec import Comparison, MeasureSpec, PolicySpec, RuleSpec, Window

__all__ = ["CompiledRule", "Policy", "PolicyError", "load", "loads", "render_summary"]

TEMPLATE_NAMES = {"dealer_id", "dealer_name", "owner"}  # in every summary; each scope adds its own
SCOPE_NAMES = {
    "dealer": set(),
    "promotion": {"promotion_id"},
    **SUBJECT_NAMES,
    support.SCOPE: support.NAMES,
    incentives.SCOPE: incentives.NAMES,
}


class PolicyError(FileError):
    """The policy file is refused."""


@dataclass(frozen=True)
class CompiledRule:
    spec: RuleSpec
    condition: ex.Condition
    pattern: Pattern
    # (age measure, days, seconds after): the clock wakes the dealer when an age crosses one of them
    age_thresholds: tuple[tuple[str, float, float], ...]
    # an age is compared with something else than a number: when it changes the outcome is not
    # known ahead, so the rule is judged at every local midnight (for every outlet or plan)
    ages_at_midnight: bool = False

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class Policy:
    source: str
    version: str  # content hash: every alert records which policy raised it
    spec: PolicySpec
    rules: tuple[CompiledRule, ...]
    measures: dict[str, Any]  # name -> dealer measure
    sources: dict[str, tuple[Source, ...]]  # event type -> sources it feeds
    calendar: Calendar = field(compare=False)
    lateness: float = 0.0
    series_horizon: float = 0.0  # how far back any window reaches
    source_horizons: dict[str, float] = field(default_factory=dict, compare=False)  # source key -> how far back
    text: str = field(default="", repr=False, compare=False)  # the file, kept as the last good one
    baseline_weeks: int = 0  # the dealer file's baseline: weeks before each week (0: no dealer_file section)

    def scoped(self, scope: str) -> tuple[CompiledRule, ...]:
        return tuple(rule for rule in self.rules if rule.spec.scope == scope)

    def rule(self, rule_id: str) -> CompiledRule:
        return next(rule for rule in self.rules if rule.id == rule_id)


def load(path: str | Path) -> Policy:
    try:
        text, source = read(path)
    except FileError as exc:
        raise PolicyError(exc.source, exc.problems) from None
    return loads(text, source=source)


def loads(text: str, source: str = "<policy>") -> Policy:
    spec, lines = validated(text, source, PolicySpec, PolicyError, shape="a mapping with version and rules")
    problems: list[tuple[int | None, str]] = []
    try:
        calendar = Calendar(spec.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append((lines.get(("timezone",)), f"unknown time zone {spec.timezone!r} (e.g. UTC, Asia/Shanghai)"))
        calendar = Calendar("UTC")
    measures, sources = {}, {NET_SALES.key: NET_SALES, OUTLET_SALES.key: OUTLET_SALES}
    for name, measure in spec.measures.items():
        where = ("measures", name)
        builtin = (
            BUILTIN_DEALER_MEASURES.keys()
            | NETWORK_MEASURES.keys()
            | set(PROMOTION_MEASURES)
            | SUBJECT_AGES
            | set(support.MEASURES)
            | set(incentives.MEASURES)
        )
        if name in builtin or name in TEMPLATE_NAMES:
            problems.append((lines.get(where), f"measure {name!r} is built in; choose another name"))
            continue
        try:
            measures[name], source_ = _compile_measure(name, measure)
            sources.setdefault(source_.key, source_)
        except ValueError as exc:
            problems.append((lines.get(where), f"measure {name!r}: {exc}"))
    measures.update(BUILTIN_DEALER_MEASURES)
    measures.update(NETWORK_MEASURES)
    compiled: list[CompiledRule] = []
    seen: dict[str, int | None] = {}
    for index, rule in enumerate(spec.rules):
        place: tuple[str | int, ...] = ("rules", index)
        if rule.id in seen:
            problems.append((lines.get(place + ("id",)), f"rule id {rule.id!r} is used twice (first on line {seen[rule.id]})"))
        seen.setdefault(rule.id, lines.get(place + ("id",)))
        try:
            compiled.append(_compile_rule(rule, measures))
        except ex.ExpressionError as exc:
            problems.append((lines.get(place + ("when",)), f"rule {rule.id!r}, when: {exc}"))
        except _TemplateError as exc:
            at: tuple[str | int, ...] = place + ("summary",)
            if exc.language and isinstance(rule.summary, dict):
                at += (exc.language,)
            problems.append((lines.get(at), f"rule {rule.id!r}, summary: {exc}"))
    problems += _engine_problems(compiled, spec, lines)
    baseline_weeks = _baseline_weeks(spec, measures, lines, problems)
    problems += _support_problems(spec, measures, lines)
    if problems:
        raise PolicyError(source, problems)
    by_type: dict[str, list[Source]] = {}
    for source_ in sources.values():
        by_type.setdefault(source_.event_type, []).append(source_)
    windows = [m for m in measures.values() if isinstance(m, WindowMeasure)]
    reach: dict[str, float] = {}
    for m in windows:
        reach[m.source] = max(reach.get(m.source, 0.0), m.start if m.start is not None else 32 * DAY)
    reach[OUTLET_SALES.key] = max(reach.get(OUTLET_SALES.key, 0.0), COVERAGE_WINDOW)  # outlet coverage
    horizon = max(reach.values(), default=0.0)
    return Policy(
        source=source,
        version=hashlib.sha256(text.encode()).hexdigest()[:12],
        spec=spec,
        rules=tuple(compiled),
        measures=measures,
        sources={kind: tuple(items) for kind, items in by_type.items()},
        calendar=calendar,
        lateness=seconds(spec.lateness),
        series_horizon=horizon,
        source_horizons=reach,
        text=text,
        baseline_weeks=baseline_weeks,
    )


def _compile_measure(name: str, spec: MeasureSpec) -> tuple[Any, Source]:
    event_type, field_name = spec.event_type, spec.field
    model = EVENT_MODELS[event_type]
    for name_ in [field_name, *spec.where] if field_name else list(spec.where):
        if name_ not in model.model_fields:
            fields = ", ".join(f for f in model.model_fields if f != "type")
            raise ValueError(f"{event_type} events have no field {name_!r} (they have {fields})")
    where = tuple(sorted(_conditions(spec.where)))
    kind = {"days_since": "last", "latest": "latest"}.get(spec.kind, "series")
    source = Source(
        key=str(SourceKey(kind, event_type, field_name, where, spec.kind == "distinct")),
        kind=kind,
        event_type=event_type,
        field=field_name,
        where=where,
        text=spec.kind == "distinct",
    )
    if spec.kind == "days_since":
        return DaysSince(name, source.key, spec.or_first_seen), source
    if spec.kind == "latest":
        return Latest(name, source.key, spec.period == "month"), source
    if spec.window == "month_to_date":
        start, end = None, 0.0
    elif isinstance(spec.window, Window):
        start, end = seconds(spec.window.from_), seconds(spec.window.to)
        if end >= start:
            raise ValueError("window 'to' must be shorter than 'from'")
    else:
        assert spec.window is not None  # a window measure (the spec checked it)
        start, end = seconds(spec.window), 0.0
    return WindowMeasure(name, source.key, spec.kind, start, end, spec.divide_by), source


def _conditions(where: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    for name, test in where.items():
        if isinstance(test, Comparison):
            for op, value in test.model_dump(by_alias=True, exclude_none=True).items():
                yield name, op, tuple(value) if isinstance(value, list) else value
        else:
            yield name, "eq", test


def _baseline_weeks(spec: PolicySpec, measures: dict[str, Any], lines: Lines, problems: Problems) -> int:
    """The dealer file's baseline measure as whole weeks before a week."""
    if spec.dealer_file is None:
        return 0
    name = spec.dealer_file.baseline
    measure = measures.get(name)
    weeks = None
    if isinstance(measure, WindowMeasure) and measure.start is not None:
        weeks = (measure.start - measure.end) / (7 * DAY)
        weeks = weeks if measure.divide_by == weeks else None
    if weeks is None or weeks != int(weeks) or not 1 <= weeks <= MAX_BASELINE_WEEKS:
        problems.append(
            (
                lines.get(("dealer_file", "baseline")),
                (
                    f"dealer_file.baseline: {name!r} must be a weekly average over 1 to {MAX_BASELINE_WEEKS} whole weeks "
                    "(a sum over `window: {from: 63d, to: 7d}` with `divide_by: 8`)"
                ),
            )
        )
        return 8
    return int(weeks)


def _support_problems(spec: PolicySpec, measures: dict[str, Any], lines: Lines) -> Problems:
    """The support section names dealer measures (declared or built in); incentive ids are unique."""
    problems: Problems = []
    seen: dict[str, int | None] = {}
    for index, program in enumerate(spec.incentives):
        where = lines.get(("incentives", index, "id"))
        if program.id in seen:
            problems.append((where, f"incentive id {program.id!r} is used twice (first on line {seen[program.id]})"))
        seen.setdefault(program.id, where)
    if spec.support is None:
        return problems
    return problems + [
        (
            lines.get(("support", "measures", part)) or lines.get(("support", "measures")) or lines.get(("support",)),
            f"support.measures.{part}: unknown measure {name!r}; dealer measures are {', '.join(sorted(measures))}",
        )
        for part, name in spec.support.measures.model_dump().items()
        if name not in measures
    ]


def _engine_problems(compiled: list[CompiledRule], spec: PolicySpec, lines: Lines) -> Problems:
    """What the engine itself refuses, found now (a policy check builds the rules exactly as the
    live service does) rather than after a reload switched to it: each rule is given to it."""
    from .engine import Matcher

    problems = []
    for rule in compiled:
        try:
            Matcher.acquire({rule.id: rule.pattern}).release()
        except Exception as exc:  # noqa: BLE001 - the engine's own error, reported with the rule's line
            index = spec.rules.index(rule.spec)
            problems.append((lines.get(("rules", index, "when")), f"rule {rule.id!r}, when: the rules engine refuses it ({exc})"))
    return problems


def _compile_rule(rule: RuleSpec, measures: dict[str, Any]) -> CompiledRule:
    condition = ex.parse(rule.when)
    available = {
        "dealer": set(measures),
        "promotion": set(PROMOTION_MEASURES),
        **{scope: set(names) for scope, names in SUBJECT_MEASURES.items()},
        support.SCOPE: set(support.MEASURES),
        incentives.SCOPE: set(incentives.MEASURES),
    }[rule.scope]
    unknown = ex.measures_of(condition) - available
    if unknown:
        raise ex.ExpressionError(
            f"unknown measure {', '.join(sorted(unknown))}; {rule.scope} rules can use {', '.join(sorted(available))}"
        )
    pattern = ex.to_durable(condition)
    thresholds, at_midnight = [], False
    if rule.scope in SUBJECT_MEASURES or rule.scope == "dealer":  # the others hold no age: no clock
        for compare in _comparisons(ex.push_negations(condition)):
            crossing = False
            for side, other in ((compare.left, compare.right), (compare.right, compare.left)):
                if isinstance(side, ex.Measure) and _is_age(side.name, rule.scope, measures) and isinstance(other, ex.Number):
                    op = compare.op if side is compare.left else ex.FLIP[compare.op]
                    thresholds += [(side.name, other.value, offset) for offset in _CROSSINGS[op]]
                    crossing = True
            ages = {name for name in ex.measures_of(compare) if _is_age(name, rule.scope, measures)}
            at_midnight |= bool(ages) and not crossing
    for language, template in rule.summaries.items():
        try:
            _check_template(template, available | TEMPLATE_NAMES | SCOPE_NAMES[rule.scope])
        except _TemplateError as exc:
            exc.language = language
            raise
    return CompiledRule(rule, condition, pattern, tuple(thresholds), at_midnight)


# When `age <op> N days` can change, in seconds after the age reaches N days exactly: `>` first
# holds one second later (the clock's resolution), `>=` at once; `<` stops at once, `<=` a second
# later. A judgement at any other time would change nothing for the comparison.
_CROSSINGS = {">": (1.0,), "<=": (1.0,), ">=": (0.0,), "<": (0.0,), "==": (0.0, 1.0), "!=": (0.0, 1.0)}


def _is_age(name: str, scope: str, measures: dict[str, Any]) -> bool:
    """An age grows with time: the clock wakes the dealer when it crosses a rule's number."""
    return isinstance(measures.get(name), AGES) if scope == "dealer" else name in SUBJECT_AGES


def _comparisons(node: ex.Condition) -> Iterator[ex.Compare]:
    if isinstance(node, ex.Compare):
        yield node
    elif isinstance(node, ex.Logic):
        for item in node.items:
            yield from _comparisons(item)


# the format of a summary's value (#22: `{dealer_id:x>300000000}` asked for 300 MB per alert)
_FORMAT = re.compile(r"(?P<align>[<>^])?(?P<width>[0-9]{1,3})?,?(?:\.(?P<precision>[0-9]{1,3}))?[feg%]?")
MAX_WIDTH, MAX_PRECISION = 40, 12


class _TemplateError(ValueError):
    language: str | None = None


class SafeFormatter(string.Formatter):
    """str.format without attribute or index access: templates see plain values only."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        if not field_name.isidentifier():
            raise _TemplateError(f"'{{{field_name}}}' is not a plain name")
        return self.get_value(field_name, args, kwargs), field_name


def _check_template(template: str, names: set[str]) -> None:
    """Only plain names, and formats of a small grammar (_FORMAT, no fill, no nested fields):
    what passes here is safe to render with str.format_map (render_summary), which would
    otherwise follow attributes, and its text stays short."""
    try:
        parsed = [(f, spec, conversion) for _, f, spec, conversion in SafeFormatter().parse(template) if f is not None]
    except ValueError as exc:
        raise _TemplateError(str(exc)) from None
    for name, spec, conversion in parsed:
        if conversion or not _FORMAT.fullmatch(spec or ""):
            raise _TemplateError(
                f"'{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}': a format is an "
                f"alignment (<, >, ^), a width up to {MAX_WIDTH}, a thousands separator (,), a precision up to "
                f"{MAX_PRECISION} and a type (f, %, e, g), each optional: e.g. :,.2f or :.0%"
            )
        width, precision = _FORMAT.fullmatch(spec or "").group("width", "precision")  # type: ignore[union-attr]
        if int(width or 0) > MAX_WIDTH or int(precision or 0) > MAX_PRECISION:
            raise _TemplateError(f"'{{{name}:{spec}}}': a width up to {MAX_WIDTH} and a precision up to {MAX_PRECISION}")
    for name in (f for f, _, _ in parsed):
        if not name.isidentifier():
            raise _TemplateError(f"'{{{name}}}' is not a plain name")
        if name not in names:
            raise _TemplateError(f"unknown name {{{name}}}; use one of {', '.join(sorted(names))}")


class _Undefined:
    """Stands for a measure with no value yet, whatever format the template asks for."""

    def __format__(self, spec: str) -> str:
        return "n/a"


class _Values(dict[str, Any]):
    def __missing__(self, key: str) -> _Undefined:
        return _Undefined()


def render_summary(template: str, values: dict[str, Any]) -> str:
    """A checked template (_check_template: plain names only) filled in. str.format_map: a rule
    firing at every tick of a long catch-up renders its summary in each language every time,
    and string.Formatter in Python took half the judging time."""
    try:
        return template.format_map(_Values(values))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return template
