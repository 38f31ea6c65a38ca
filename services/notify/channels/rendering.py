"""Message text from Jinja2 templates, per channel kind and language (templates/)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import jinja2

LANGUAGES = ("zh", "en")


@cache
def _environment(escape: Callable[[str], str] | None) -> jinja2.Environment:
    """`escape` is applied to every value a template prints (escaping.py): the templates' own
    words are left as written."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("services.notify.channels", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text and markdown; HTML is not produced
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=(lambda value: escape(str(value)) if value is not None else "") if escape else None,
    )


def language_of(alerts: list[dict[str, Any]], default: str) -> str:
    """The (first) alert's language: its `language` label, else the receiver's."""
    wanted = (alerts[0].get("labels") or {}).get("language") or default
    return wanted if wanted in LANGUAGES else "en"


def render(name: str, alerts: list[dict[str, Any]], language: str, escape: Callable[[str], str] | None = None) -> str:
    """Templates see `alerts` (a group) and `alert` (the first)."""
    return _environment(escape).get_template(f"{name}.{language}.j2").render(alerts=alerts, alert=alerts[0]).strip()


MORE = {"en": "… and {n} more", "zh": "…… 另有 {n} 条"}


def fit(text: str, max_bytes: int, language: str) -> str:
    """The text within a robot's size limit: whole lines, and how many list lines were left out
    (a large group must still arrive, not be refused for its size)."""
    if len(text.encode()) <= max_bytes:
        return text
    lines = text.splitlines()
    kept: list[str] = []
    size = len(MORE[language].format(n=len(lines)).encode()) + 1
    for line in lines:
        size += len(line.encode()) + 1
        if size > max_bytes:
            break
        kept.append(line)
    left_out = sum(1 for line in lines[len(kept) :] if line.startswith("- "))
    return "\n".join(kept + [MORE[language].format(n=left_out)])
