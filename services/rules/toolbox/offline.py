"""Work too heavy for the service's event loop (the engine holds the interpreter for a whole
call): a diff on the archive runs in a process of its own, started for it and gone after."""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from services.common.events import parse_event

from .. import policy as policies
from . import diff


def diff_texts(old_text: str, new_text: str, events: list[dict[str, Any]], now: str | None) -> dict[str, Any]:
    """(in the child) The diff of two policy texts on archived events (as posted)."""
    old = policies.loads(old_text, source="live policy")
    new = policies.loads(new_text, source="posted policy")
    parsed = [parse_event(e) for e in events]
    return diff.compare(parsed, old, new, dt.datetime.fromisoformat(now) if now else None)


async def in_process(function: Any, *args: Any) -> Any:
    # spawn, not fork: the engine's timer threads and the event loop are not for copying
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
