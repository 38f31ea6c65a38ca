"""Hot reload of a file operators edit (the policy, the routes): checked every few seconds by
its modification time and size, reloaded when either changes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


class FileWatch:
    def __init__(self, path: str | Path):
        self.path = path
        self._stamp = self._read()

    def _read(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size

    def seen(self) -> None:
        """The file as it is now has been read."""
        self._stamp = self._read()

    def changed(self) -> bool:
        return self._read() != self._stamp

    async def watch(self, interval: float, reload: Callable[[], Any]) -> None:
        """Call `reload` whenever the file changed (it reads the file and calls `seen`)."""
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                reload()
