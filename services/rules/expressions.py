"""The condition language of policy files: parse, evaluate, compile to durable-rules JSON.

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison | "(" condition ")"
    comparison := sum ("<" | "<=" | ">" | ">=" | "==" | "!=") sum
    sum        := product (("+" | "-") product)*
    product    := factor (("*" | "/") factor)*
    factor     := NUMBER | MEASURE | "(" sum ")" | "-" factor

Example: `sales_7d < 0.7 * sales_baseline_weekly and first_seen_days >= 63`.
Nothing is ever passed to `eval`: text becomes a small tree of dataclasses.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class ExpressionError(ValueError):
    def __init__(self, message: str, column: int | None = None):
        super().__init__(message if column is None else f"{message} (at column {column + 1})")
        self.column = column


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Measure:
    name: str


@dataclass(frozen=True)
class Arith:
    op: str  # + - * /
    left: Value
    right: Value


@dataclass(frozen=True)
class Compare:
    op: str  # < <= > >= == !=
    left: Value
    right: Value


@dataclass(frozen=True)
class Logic:
    op: str  # and / or
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Value = Number | Measure | Arith
Condition = Compare | Logic | Not

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)))"
)
_KEYWORDS = {"and", "or", "not"}
_COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise ExpressionError(f"unexpected character {text[pos:].lstrip()[0]!r}", len(text) - len(text[pos:].lstrip()))
        kind = match.lastgroup or ""
        value = match.group(kind)
        column = match.start(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = "keyword"
        tokens.append((kind, value, column))
        pos = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


MAX_TOKENS = 500
MAX_DEPTH = 32  # parentheses, `not` and unary minus, nested


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        if len(self.tokens) > MAX_TOKENS:
            raise ExpressionError(f"longer than {MAX_TOKENS} words and signs; split it into measures", self.tokens[MAX_TOKENS][2])
        self.pos = 0
        self.depth = 0

    def _deeper(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep", column)

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.pos]

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        token = self.tokens[self.pos]
        if value is not None and token[1] != value:
            raise ExpressionError(f"expected {value!r} but found {token[1] or 'the end'!r}", token[2])
        self.pos += 1
        return token

    def condition(self) -> Condition:
        items = [self.conjunction()]
        while self.peek()[1] == "or":
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Logic("or", tuple(items))

    def conjunction(self) -> Condition:
        items = [self.negation()]
        while self.peek()[1] == "and":
            self.take()
            items.append(self.negation())
        return items[0] if len(items) == 1 else Logic("and", tuple(items))

    def negation(self) -> Condition:
        if self.peek()[1] == "not":
            self._deeper(self.take()[2])
            negated = Not(self.negation())
            self.depth -= 1
            return negated
        if self.peek()[1] == "(" and self._parenthesised_condition():
            self._deeper(self.take("(")[2])
            inner = self.condition()
            self.take(")")
            self.depth -= 1
            return inner
        left = self.sum()
        kind, op, column = self.peek()
        if op not in _COMPARISONS:
            raise ExpressionError(f"expected a comparison (<, <=, >, >=, ==, !=) but found {op or 'the end'!r}", column)
        self.take()
        return Compare(op, left, self.sum())

    def _parenthesised_condition(self) -> bool:
        """Does the '(' at the cursor open a condition (and/or/not/comparison inside)?"""
        depth = 0
        for kind, value, _ in self.tokens[self.pos :]:
            if value == "(":
                depth += 1
            elif value == ")":
                depth -= 1
                if depth == 0:
                    return False
            elif kind == "keyword" or value in _COMPARISONS:
                return True
        return False

    def sum(self) -> Value:
        left = self.product()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            left = Arith(op, left, self.product())
        return left

    def product(self) -> Value:
        left = self.factor()
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            left = Arith(op, left, self.factor())
        return left

    def factor(self) -> Value:
        kind, value, column = self.take()
        if kind == "number":
            number = float(value)
            if not math.isfinite(number) or (number and not 1e-300 <= abs(number) <= 1e300):
                raise ExpressionError(f"the number {value} is outside what can be compared (1e-300 to 1e300)", column)
            return Number(number)
        if kind == "name":
            return Measure(value)
        if value == "-":
            self._deeper(column)
            inner = self.factor()
            self.depth -= 1
            return Number(-inner.value) if isinstance(inner, Number) else Arith("-", Number(0.0), inner)
        if value == "(":
            self._deeper(column)
            inner = self.sum()
            self.take(")")
            self.depth -= 1
            return inner
        raise ExpressionError(f"expected a number or a measure name but found {value or 'the end'!r}", column)


def parse(text: str) -> Condition:
    parser = _Parser(text)
    result = parser.condition()
    kind, value, column = parser.peek()
    if kind != "end":
        raise ExpressionError(f"unexpected {value!r} after a complete condition", column)
    return result


def measures_of(node: Value | Condition) -> set[str]:
    if isinstance(node, Measure):
        return {node.name}
    if isinstance(node, Number):
        return set()
    if isinstance(node, (Arith, Compare)):
        return measures_of(node.left) | measures_of(node.right)
    if isinstance(node, Logic):
        return set().union(*(measures_of(item) for item in node.items))
    return measures_of(node.item)


def render(node: Value | Condition) -> str:
    """Canonical text; `parse(render(x)) == x` (tested)."""
    if isinstance(node, Number):
        return repr(node.value) if node.value >= 0 else f"({node.value!r})"
    if isinstance(node, Measure):
        return node.name
    if isinstance(node, (Arith, Compare)):
        return (
            f"({render(node.left)} {node.op} {render(node.right)})"
            if isinstance(node, Arith)
            else f"{render(node.left)} {node.op} {render(node.right)}"
        )
    if isinstance(node, Logic):
        return "(" + f" {node.op} ".join(render(item) for item in node.items) + ")"
    return f"not ({render(node.item)})"


# --- evaluation in Python (explain, details, and a cross-check of the engine) ---

_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": lambda a, b: a / b if b else _divided_by_zero(a, b),
}


def _divided_by_zero(a: float, b: float) -> float:
    """As the engine (C doubles) divides: +-inf by the signs, and 0 / 0 is not a number, which
    makes every comparison but != false (found by the property test `a <= 0 / a` at a = 0)."""
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


_CMP: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def value_of(node: Value, measures: Mapping[str, float]) -> float | None:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Measure):
        return measures.get(node.name)
    left, right = value_of(node.left, measures), value_of(node.right, measures)
    return None if left is None or right is None else _ARITH[node.op](left, right)


def holds(node: Condition, measures: dict[str, float]) -> bool:
    """A comparison with an undefined measure is false, as in the engine (which is why
    negations are pushed into the comparisons first, exactly as for the engine)."""
    return _holds(push_negations(node), measures)


def _holds(node: Condition, measures: dict[str, float]) -> bool:
    if isinstance(node, Compare):
        left, right = value_of(node.left, measures), value_of(node.right, measures)
        return left is not None and right is not None and _CMP[node.op](left, right)
    if isinstance(node, Logic):
        results = (_holds(item, measures) for item in node.items)
        return all(results) if node.op == "and" else any(results)
    raise AssertionError("negations were pushed into comparisons")


# --- compilation to durable-rules JSON ---

_DURABLE_CMP = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "==": "$eq", "!=": "$neq"}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}  # a < b  <=>  b > a
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_DURABLE_ARITH = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}


def push_negations(node: Condition, negate: bool = False) -> Condition:
    """Remove `not` by De Morgan and flipped comparisons (the engine has no `not`)."""
    if isinstance(node, Not):
        return push_negations(node.item, not negate)
    if isinstance(node, Logic):
        op = {"and": "or", "or": "and"}[node.op] if negate else node.op
        return Logic(op, tuple(push_negations(item, negate) for item in node.items))
    return Compare(_NEGATE[node.op], node.left, node.right) if negate else node


def to_durable(node: Condition) -> dict[str, Any]:
    """One pattern for durable-rules' `m`. Each comparison must have a lone measure on one side
    (the engine compares a field with an expression); the loader reports it otherwise."""
    node = push_negations(node)
    if isinstance(node, Logic):
        return {f"${node.op}": [to_durable(item) for item in node.items]}
    assert isinstance(node, Compare)  # no `not` is left
    left, op, right = node.left, node.op, node.right
    if not isinstance(left, Measure):
        if not isinstance(right, Measure):
            raise ExpressionError(f"one side of '{render(node)}' must be a single measure name")
        left, op, right = right, FLIP[op], left
    comparison = {_DURABLE_CMP[op]: {left.name: _durable_value(right)}}
    # The engine evaluates arithmetic over a missing field as if it were there; an undefined
    # measure must make the comparison false, so every measure it uses must exist.
    guards = [{"$ex": {name: 1}} for name in sorted(measures_of(node))]
    return {"$and": [*guards, comparison]}


def fold(node: Value) -> Value:
    """Compute constant sub-expressions (the engine mis-evaluates arithmetic on two constants:
    found by the property test `0 <= a + 0 * 0`)."""
    if isinstance(node, Arith):
        left, right = fold(node.left), fold(node.right)
        if isinstance(left, Number) and isinstance(right, Number):
            return Number(_ARITH[node.op](left.value, right.value))
        return Arith(node.op, left, right)
    return node


def _durable_value(node: Value) -> Any:
    node = fold(node)
    if isinstance(node, Number):
        if not math.isfinite(node.value):
            raise ExpressionError("a calculation with its numbers alone has no finite result")
        return node.value
    if isinstance(node, Measure):
        return {"$m": node.name}
    return {_DURABLE_ARITH[node.op]: {"$l": _durable_value(node.left), "$r": _durable_value(node.right)}}


# --- the outcome of every comparison at once (the engine's answers reused: engine.Matcher) ---


def comparisons(conditions: list[Condition]) -> list[Compare]:
    """Every comparison of the conditions as the engine gets them (negations pushed in), once each."""
    found: dict[str, Compare] = {}
    stack: list[Condition] = [push_negations(c) for c in conditions]
    while stack:
        node = stack.pop()
        if isinstance(node, Logic):
            stack.extend(node.items)
        elif isinstance(node, Compare):
            found.setdefault(render(node), node)
    return [found[text] for text in sorted(found)]


Lookup = Callable[[str], "float | None"]  # a measure's value by name (None: undefined)


def outcome_key(conditions: list[Condition]) -> Callable[[dict[str, float]], int]:
    """A function of the measures whose value is the same for two sets of measures exactly when
    every comparison of the conditions comes out the same (one bit each, in the order of
    `comparisons`): the engine's answer (which rules hold) is a function of those outcomes only.
    Built from the parsed conditions, never from text run as code."""
    atoms = [comparison_test(node) for node in comparisons(conditions)]

    def key(measures: dict[str, float]) -> int:
        lookup = measures.get
        bits = 0
        for bit, atom in enumerate(atoms):
            if atom(lookup):
                bits |= 1 << bit
        return bits

    return key


def comparison_test(node: Compare) -> Callable[[Lookup], bool]:
    """The comparison as a function of a lookup of the measures (false when a side is undefined).
    A measure compared with a number, the usual shape, is one call (a judgement asks a few)."""
    compare = _CMP[node.op]
    if isinstance(node.left, Measure) and isinstance(node.right, Number):
        name, number = node.left.name, node.right.value

        def measure_with_number(lookup: Lookup) -> bool:
            value = lookup(name)
            return value is not None and compare(value, number)

        return measure_with_number
    left, right = _value_function(node.left), _value_function(node.right)

    def atom(lookup: Lookup) -> bool:
        a, b = left(lookup), right(lookup)
        return a is not None and b is not None and compare(a, b)

    return atom


def _value_function(node: Value) -> Callable[[Lookup], float | None]:
    if isinstance(node, Number):
        constant = node.value
        return lambda lookup: constant
    if isinstance(node, Measure):
        name = node.name
        return lambda lookup: lookup(name)
    left, right, arith = _value_function(node.left), _value_function(node.right), _ARITH[node.op]

    def value(lookup: Lookup) -> float | None:
        a, b = left(lookup), right(lookup)
        return None if a is None or b is None else arith(a, b)

    return value
