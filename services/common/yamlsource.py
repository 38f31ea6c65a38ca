"""Reading YAML with line numbers, and turning validation errors into lines a rule author reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Path_ = tuple[str | int, ...]  # a place in the document: keys and indexes
Lines = dict[Path_, int]
Problems = list[tuple[int | None, str]]
Model = TypeVar("Model", bound=BaseModel)


class FileError(ValueError):
    """A file rule authors or operators write (the policy, the routes), refused: each problem
    with its line."""

    def __init__(self, source: str, problems: Problems):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.source}:{line or 1}: {message}" for line, message in self.problems]


def read(path: str | Path) -> tuple[str, str]:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(str(path), [(None, f"cannot read the file: {exc}")]) from None


MAX_BYTES = 1024 * 1024
MAX_VALUES = 20_000  # counting what aliases repeat: a few bytes of aliases can expand tenfold per level
MAX_DEPTH = 40


def parse_yaml(text: str, source: str) -> tuple[Any, Lines]:
    """The document (plain data: the safe loader builds no objects) and a map path -> line.
    Bounded: size, nesting and the number of values once aliases are expanded."""
    if len(text) > MAX_BYTES:
        raise FileError(source, [(None, f"the file is larger than {MAX_BYTES:,} bytes")])
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is not None:
            _check_size(node, source)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise FileError(source, [(mark.line + 1 if mark else None, f"not valid YAML: {problem}")]) from None
    except RecursionError:
        raise FileError(source, [(None, f"nested more than {MAX_DEPTH} levels deep")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: Lines = {}
    problems: Problems = []
    _record_lines(node, (), lines, problems, set())
    if problems:
        raise FileError(source, problems)
    return data, lines


def validated(
    text: str, source: str, model: type[Model], error: type[FileError] = FileError, shape: str = "a mapping"
) -> tuple[Model, Lines]:
    """Parse, then validate against the file's model: every problem refused as `error`, each with its line.
    `shape` says what the top level must be, for a file that is not a mapping at all."""
    try:
        data, lines = parse_yaml(text, source)
    except FileError as exc:
        raise error(exc.source, exc.problems) from None
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        raise error(source, [describe(e, lines, shape) for e in exc.errors(include_url=False)]) from None


def _check_size(root: yaml.Node, source: str) -> None:
    """Count the values the document stands for (an alias counts its whole target again), each
    node once (so the count itself is linear), and the nesting depth; refuse what is too big."""
    sizes: dict[int, int] = {}
    stack = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            raise FileError(source, [(node.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")])
        children = _children(node)
        if done or not children:
            size = 1 + sum(sizes[id(child)] for child in children)
            sizes[id(node)] = size
            if size > MAX_VALUES:
                raise FileError(
                    source,
                    [
                        (
                            node.start_mark.line + 1,
                            (
                                f"this part stands for more than {MAX_VALUES:,} values (YAML aliases repeat what they name); "
                                "write it out or use fewer aliases"
                            ),
                        )
                    ],
                )
            continue
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _record_lines(node: yaml.Node | None, path: Path_, lines: Lines, problems: Problems, seen: set[int]) -> None:
    if node is None:
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen:  # an alias: its lines were recorded where it was anchored
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in keys:
                problems.append((key_node.start_mark.line + 1, f"key {key!r} appears twice (also on line {keys[key]})"))
            keys[key] = key_node.start_mark.line + 1
            lines[path + (key,)] = key_node.start_mark.line + 1
            _record_lines(value_node, path + (key,), lines, problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, path + (index,), lines, problems, seen)


def describe(error: Any, lines: Lines, shape: str = "a mapping") -> tuple[int | None, str]:
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
        message = f"the file must be {shape}"
    else:
        value = error.get("input")
        got = f" (got {value!r})" if isinstance(value, str | int | float | bool) else ""
        message = f"{where}: {error['msg'].removeprefix('Value error, ')}{got}"
    return line, message
