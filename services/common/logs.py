"""Readable one-line logs for every service (stdlib logging)."""

from __future__ import annotations

import logging
from collections.abc import Callable


def configure(level: str = "INFO", service: str = "") -> None:
    prefix = f"{service:<6} " if service else ""
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {prefix}%(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    # the broker client logs every reconnect attempt with a traceback; ours is enough
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def dump_tasks_on_signal(extra: Callable[[], str] | None = None) -> None:
    """`kill -USR1 <pid>` logs every asyncio task with where it waits: what a stalled consumer or
    loop is waiting for, without stopping it."""
    import asyncio
    import io
    import signal

    loop = asyncio.get_running_loop()

    def dump() -> None:
        out = io.StringIO()
        for task in asyncio.all_tasks(loop):
            out.write(f"--- {task.get_name()}: {task.get_coro()!r}\n")
            task.print_stack(limit=12, file=out)
        if extra is not None:
            out.write(extra())
        logging.getLogger("dealerwatch.tasks").warning("asyncio tasks:\n%s", out.getvalue())

    loop.add_signal_handler(signal.SIGUSR1, dump)
