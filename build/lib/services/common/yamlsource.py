"""Reading YAML with line numbers, and turning validation errors into lines a rule author reads."""

from __future__ import annotations

from pathlib import Path

import yaml


class PolicyError(ValueError):
    def __init__(self, source: str, problems: list[tuple[int | None, str]]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}:{line or 1}: {message}" for line, message in self.problems]


def read(path) -> tuple[str, str]:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), [(None, f"cannot read the file: {exc}")]) from None


def parse_yaml(text: str, source: str) -> tuple[object, dict[tuple, int]]:
    """The document (plain data: safe_load builds no objects) and a map path -> line."""
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


def describe(error: dict, lines: dict[tuple, int]) -> tuple[int | None, str]:
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
        message = f"{where}: {error['msg'].removeprefix('Value error, ')}{got}"
    return line, message
