"""`--output table|json`: a table of chosen columns for people, the API's JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def emit(items: list[dict[str, Any]], columns: Sequence[tuple[str, str]], output: str) -> None:
    """columns: (heading, field; `a.b` reads a nested field)."""
    if output == "json":
        json.dump(items, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
        return
    rows = [[_cell(item, field) for _, field in columns] for item in items]
    widths = [max([len(heading)] + [len(row[i]) for row in rows]) for i, (heading, _) in enumerate(columns)]
    print("  ".join(heading.upper().ljust(width) for (heading, _), width in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _cell(item: dict[str, Any], field: str) -> str:
    value: Any = item
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return "-"
    text = str(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."
