"""Hot reload of the policy file: on change (polled), on SIGHUP, or through the admin endpoint.

An invalid file is refused with its errors logged and the running policy stays;
dealer state is never touched. The engine swaps rulesets in place (engine.py),
so reloads do not grow threads or memory.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

from services.common.filewatch import FileWatch
from services.common.yamlsource import FileError

from . import policy as policies
from .metrics import RELOADS

if TYPE_CHECKING:
    from .policy_history import PolicyHistory
    from .service import RulesService

log = logging.getLogger("dealerwatch.rules.reload")


class PolicyReloader:
    def __init__(self, path: str, service: RulesService, interval: float = 1.0, history: PolicyHistory | None = None):
        self.path = path
        self.service = service
        self.history = history  # the board's reload history (None: not kept)
        self.interval = interval
        self._file = FileWatch(path)

    def reload(self, reason: str) -> dict[str, Any]:
        self._file.seen()
        current = self.service.core.policy
        try:
            loaded = policies.load(self.path)
            if loaded.version == current.version:
                self.service.policy_file_errors = []
                return {"reloaded": False, "version": current.version, "errors": []}
            self.service.use_policy(loaded)
        except FileError as exc:
            log.error("policy reload (%s) refused, still running %s:\n%s", reason, current.version, exc)
            errors = exc.lines()
        except Exception as exc:
            log.exception("policy reload (%s) failed, still running %s", reason, current.version)
            errors = [f"{self.path}: {type(exc).__name__}: {exc}"]
        else:
            log.info("policy reloaded (%s): %s -> %s, %d rules", reason, current.version, loaded.version, len(loaded.rules))
            RELOADS.labels("ok").inc()
            if self.history is not None:
                self.history.record_soon("accepted", reason, current, loaded, [])
            return {"reloaded": True, "version": loaded.version, "errors": []}
        RELOADS.labels("refused").inc()
        if self.history is not None:
            self.history.record_soon("refused", reason, current, None, errors)
        self.service.policy_file_errors = errors
        return {"reloaded": False, "version": current.version, "errors": errors}

    def install_signal(self) -> None:
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass

    async def watch(self) -> None:
        await self._file.watch(self.interval, lambda: self.reload("file changed"))
