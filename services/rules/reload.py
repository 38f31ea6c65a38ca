"""Hot reload of the policy file: on change (polled), on SIGHUP, or through the admin endpoint.

An invalid file is refused with its errors logged and the running policy stays;
dealer state is never touched. The engine swaps rulesets in place (engine.py),
so reloads do not grow threads or memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from . import policy as policies

log = logging.getLogger("dealerwatch.rules.reload")


class PolicyReloader:
    def __init__(self, path: str, service, interval: float = 1.0):
        self.path = path
        self.service = service
        self.interval = interval
        self._stamp = self._file_stamp()

    def _file_stamp(self):
        try:
            info = os.stat(self.path)
            return info.st_mtime_ns, info.st_size
        except OSError:
            return None

    def reload(self, reason: str) -> dict:
        self._stamp = self._file_stamp()
        current = self.service.core.policy
        try:
            loaded = policies.load(self.path)
            if loaded.version == current.version:
                self.service.policy_file_errors = []
                return {"reloaded": False, "version": current.version, "errors": []}
            self.service.use_policy(loaded)
        except policies.PolicyError as exc:
            log.error("policy reload (%s) refused, still running %s:\n%s", reason, current.version, exc)
            errors = exc.lines()
        except Exception as exc:  # noqa: BLE001 - whatever it was, the running policy stays
            log.exception("policy reload (%s) failed, still running %s", reason, current.version)
            errors = [f"{self.path}: {type(exc).__name__}: {exc}"]
        else:
            log.info("policy reloaded (%s): %s -> %s, %d rules", reason, current.version, loaded.version, len(loaded.rules))
            return {"reloaded": True, "version": loaded.version, "errors": []}
        self.service.policy_file_errors = errors
        return {"reloaded": False, "version": current.version, "errors": errors}

    def install_signal(self) -> None:
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload, "SIGHUP")
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._file_stamp() != self._stamp:
                self.reload("file changed")
