"""Event-supplied text (dealer ids, owners, summaries) made inert for each message format, so an
upstream value can neither mention everyone, add a link, nor restyle a message. Applied to every
value a template prints (rendering.py); the templates' own words are left as written."""

from __future__ import annotations

import re

_LINK = re.compile(r"(?i)(\w+)://")  # a scheme: robots turn what follows into a link
# what makes markup anywhere in a line (emphasis, links, images, code, headings, tables)
_MARKDOWN = re.compile(r"([\\`*_\[\]()#!|~])")
_LIST = re.compile(r"(?m)^([-+=])")  # at a line's start: lists, underlined headings
_NUMBERED = re.compile(r"(?m)^(\d+)\.")
_ZERO_WIDTH = "\u200b"


def _unlink(text: str) -> str:
    return _LINK.sub(lambda m: f"{m.group(1)}:{_ZERO_WIDTH}//", text)


def markdown(text: str) -> str:
    """WeCom and DingTalk markdown: markup escaped with backslashes; `<@user>` mentions and
    inline HTML turned into look-alike brackets."""
    escaped = _NUMBERED.sub(r"\1\\.", _LIST.sub(r"\\\1", _MARKDOWN.sub(r"\\\1", _unlink(text))))
    return escaped.replace("<", "＜").replace(">", "＞")


def plain(text: str) -> str:
    """Feishu text: no markup, but `<at user_id="all">` mentions and links."""
    return _unlink(text).replace("<", "＜").replace(">", "＞")


def slack(text: str) -> str:
    """Slack: its own escapes for &, < and > (no <!channel>, no <url|text>), and the formatting
    marks split from the text they would style."""
    escaped = _unlink(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([*_~`])", _ZERO_WIDTH + r"\1", escaped)
