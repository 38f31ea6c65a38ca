"""Readable one-line logs for every service (stdlib logging)."""

from __future__ import annotations

import logging


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
