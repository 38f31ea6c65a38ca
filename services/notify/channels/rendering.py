"""Message text from Jinja2 templates, per channel kind and language (templates/)."""

from __future__ import annotations

import jinja2

LANGUAGES = ("zh", "en")

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("services.notify.channels", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # plain text and markdown; HTML is not produced
    trim_blocks=True,
    lstrip_blocks=True,
)


def language_of(alert: dict, default: str) -> str:
    """The alert's language: its `language` label, else the receiver's."""
    wanted = (alert.get("labels") or {}).get("language") or default
    return wanted if wanted in LANGUAGES else "en"


def render(name: str, alert: dict, language: str) -> str:
    return _environment.get_template(f"{name}.{language}.j2").render(alert=alert).strip()
