"""Policy files: YAML -> validated models -> compiled rules, with errors that name the line.

A policy is data: it is parsed with yaml.safe_load, validated by pydantic
models, and its conditions are parsed by `expressions` (never `eval`).
"""

from __future__ import annotations

import hashlib
import string
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.alerts import Severity

from . import expressions as ex
from .measures import DEALER_MEASURES, PROMOTION_MEASURES, Age

TEMPLATE_NAMES = {"dealer_id", "promotion_id", "owner"}


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Stable rule id, e.g. sales-drop.")
    description: str = Field(min_length=1)
    severity: Severity
    kind: Literal["condition", "event"] = Field(
        description="condition: resolves by itself when the condition stops holding; "
        "event: fires on an event and stays open until a person resolves it."
    )
    scope: Literal["dealer", "promotion"] = Field(
        default="dealer", description="What the measures describe: the dealer, or one of its promotions."
    )
    when: str = Field(min_length=1, description="Condition over measures, e.g. `sales_7d < 0.7 * sales_baseline_weekly`.")
    summary: str = Field(min_length=1, description="Message template: {measure:.0f}, {dealer_id}, {owner}.")
    labels: dict[str, str] = Field(default_factory=dict, description="Routing labels, e.g. region.")


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    timezone: str = Field(default="UTC", description="Calendar time zone, e.g. Asia/Shanghai.")
    rules: list[RuleSpec] = Field(min_length=1)


class PolicyError(ValueError):
    def __init__(self, source: str, problems: list[tuple[int | None, str]]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}:{line or 1}: {message}" for line, message in self.problems]


@dataclass(frozen=True)
class CompiledRule:
    spec: RuleSpec
    condition: ex.Condition
    pattern: dict
    # (age measure, days) pairs: the clock wakes the dealer when an age crosses one of them
    age_thresholds: tuple[tuple[str, float], ...]

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class Policy:
    source: str
    version: str  # content hash: every alert records which policy raised it
    spec: PolicySpec
    rules: tuple[CompiledRule, ...]

    def scoped(self, scope: str) -> tuple[CompiledRule, ...]:
        return tuple(rule for rule in self.rules if rule.spec.scope == scope)

    def rule(self, rule_id: str) -> CompiledRule:
        return next(rule for rule in self.rules if rule.id == rule_id)


def load(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [(None, f"cannot read the file: {exc.strerror}")]) from None
    return loads(text, source=str(path))


def loads(text: str, source: str = "<policy>") -> Policy:
    data, lines = _parse_yaml(text, source)
    try:
        spec = PolicySpec.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, [_describe(error, lines) for error in exc.errors(include_url=False)]) from None
    problems: list[tuple[int | None, str]] = []
    try:
        zoneinfo.ZoneInfo(spec.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append((lines.get(("timezone",)), f"unknown time zone {spec.timezone!r} (e.g. UTC, Asia/Shanghai)"))
    compiled, seen = [], {}
    for index, rule in enumerate(spec.rules):
        where = ("rules", index)
        if rule.id in seen:
            problems.append((lines.get(where + ("id",)), f"rule id {rule.id!r} is used twice (first on line {seen[rule.id]})"))
        seen.setdefault(rule.id, lines.get(where + ("id",)))
        try:
            compiled.append(_compile(rule))
        except ex.ExpressionError as exc:
            problems.append((lines.get(where + ("when",)), f"rule {rule.id!r}, when: {exc}"))
        except _TemplateError as exc:
            problems.append((lines.get(where + ("summary",)), f"rule {rule.id!r}, summary: {exc}"))
    if problems:
        raise PolicyError(source, problems)
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Policy(source=source, version=version, spec=spec, rules=tuple(compiled))


def _compile(rule: RuleSpec) -> CompiledRule:
    condition = ex.parse(rule.when)
    available = DEALER_MEASURES.keys() if rule.scope == "dealer" else PROMOTION_MEASURES.keys()
    unknown = ex.measures_of(condition) - set(available)
    if unknown:
        raise ex.ExpressionError(
            f"unknown measure {', '.join(sorted(unknown))}; {rule.scope} rules can use {', '.join(sorted(available))}"
        )
    pattern = ex.to_durable(condition)
    thresholds = []
    for compare in _comparisons(ex.push_negations(condition)):
        for side, other in ((compare.left, compare.right), (compare.right, compare.left)):
            if isinstance(side, ex.Measure) and isinstance(DEALER_MEASURES.get(side.name), Age) and rule.scope == "dealer":
                if not isinstance(other, ex.Number):
                    raise ex.ExpressionError(f"{side.name} grows with time and can only be compared with a number")
                thresholds.append((side.name, other.value))
    _check_template(rule.summary, set(available) | TEMPLATE_NAMES)
    return CompiledRule(rule, condition, pattern, tuple(thresholds))


def _comparisons(node):
    if isinstance(node, ex.Compare):
        yield node
    elif isinstance(node, ex.Logic):
        for item in node.items:
            yield from _comparisons(item)


class _TemplateError(ValueError):
    pass


class SafeFormatter(string.Formatter):
    """str.format without attribute or index access: templates see plain values only."""

    def get_field(self, field_name, args, kwargs):
        if not field_name.isidentifier():
            raise _TemplateError(f"'{{{field_name}}}' is not a plain name")
        return self.get_value(field_name, args, kwargs), field_name


def _check_template(template: str, names: set[str]) -> None:
    try:
        fields = [f for _, f, _, _ in SafeFormatter().parse(template) if f is not None]
    except ValueError as exc:
        raise _TemplateError(str(exc)) from None
    for field in fields:
        if not field.isidentifier():
            raise _TemplateError(f"'{{{field}}}' is not a plain name")
        if field not in names:
            raise _TemplateError(f"unknown name {{{field}}}; use one of {', '.join(sorted(names))}")


def render_summary(template: str, values: dict) -> str:
    class Missing(dict):
        def __missing__(self, key):
            return "n/a"

    try:
        return SafeFormatter().vformat(template, (), Missing(values))
    except (ValueError, TypeError, _TemplateError):
        return template


def _parse_yaml(text: str, source: str) -> tuple[object, dict[tuple, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(source, [(mark.line + 1 if mark else None, f"not valid YAML: {problem}")]) from None
    lines: dict[tuple, int] = {}
    problems: list[tuple[int | None, str]] = []
    _record_lines(node, (), lines, problems)
    if problems:
        raise PolicyError(source, problems)
    return data, lines


def _record_lines(node, path: tuple, lines: dict, problems: list) -> None:
    if node is None:
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in keys:
                problems.append((key_node.start_mark.line + 1, f"key {key!r} appears twice (also on line {keys[key]})"))
            keys[key] = key_node.start_mark.line + 1
            lines[path + (key,)] = key_node.start_mark.line + 1
            _record_lines(value_node, path + (key,), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, path + (index,), lines, problems)


def _describe(error: dict, lines: dict[tuple, int]) -> tuple[int | None, str]:
    loc = tuple(error["loc"])
    line = None
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            line = lines[loc[:cut]]
            break
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "the file"
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key '{loc[-1]}' at {where}"
    elif kind == "missing":
        message = f"missing key '{loc[-1]}' at {where}"
    elif kind in ("model_type", "dict_type") and not loc:
        message = "the policy must be a mapping with version and rules"
    else:
        value = error.get("input")
        got = f" (got {value!r})" if isinstance(value, str | int | float | bool) else ""
        message = f"{where}: {error['msg']}{got}"
    return line, message
