"""A 3-node RabbitMQ cluster on this one machine, from its own installation (steps measured in
../shared/notes/scale-facts.md): each node has its own name, ports, config and data folders,
owned by the `rabbitmq` user the server runs as; nodes 2 and 3 join node 1. The machine's own
node (rabbit@localhost, port 5672) is left alone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

PORT = 5760  # node i listens on PORT + i, distribution on 25760 + i


class RabbitCluster:
    def __init__(self, size: int = 3, name: str = "dwtest"):
        self.size = size
        self.names = [f"{name}{i}@localhost" for i in range(1, size + 1)]
        self.base = Path(tempfile.mkdtemp(prefix="rabbit-cluster-"))

    def url(self, i: int) -> str:
        return f"amqp://guest:guest@127.0.0.1:{PORT + i}/"

    def urls(self, first: int = 1) -> str:
        """Every node's URL, comma-separated, starting with node `first`."""
        order = [*range(first, self.size + 1), *range(1, first)]
        return ",".join(self.url(i) for i in order)

    def _folder(self, i: int) -> Path:
        return self.base / f"node{i}"

    def start(self) -> RabbitCluster:
        for i in range(1, self.size + 1):
            folder = self._folder(i)
            (folder / "mnesia").mkdir(parents=True)
            (folder / "log").mkdir()
            (folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{PORT + i}\n")
            (folder / "enabled_plugins").write_text("[].\n")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.base)], check=True)
        for i in range(1, self.size + 1):
            folder = self._folder(i)
            env = {
                **os.environ,
                "RABBITMQ_NODENAME": self.names[i - 1],
                "RABBITMQ_DIST_PORT": str(25760 + i),
                "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
                "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
                "RABBITMQ_LOG_BASE": str(folder / "log"),
                "RABBITMQ_PID_FILE": str(folder / "pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            }
            subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True, capture_output=True)
        for name in self.names:
            self._await(name)
        for name in self.names[1:]:
            self._ctl(name, "stop_app")
            self._ctl(name, "join_cluster", self.names[0])
            self._ctl(name, "start_app")
        return self

    def _ctl(self, node: str, *args: str, timeout: float = 60) -> None:
        subprocess.run(["rabbitmqctl", "-q", "-n", node, *args], check=True, capture_output=True, timeout=timeout)

    def _await(self, node: str, seconds: float = 60) -> None:
        """A detached node registers with epmd a moment after it was started."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self._ctl(node, "await_startup", "--timeout", "30")
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def kill(self, i: int) -> None:
        """SIGKILL of node i's Erlang VM: a crash, not a shutdown."""
        pid = int((self._folder(i) / "pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        for i, name in enumerate(self.names, start=1):
            try:
                self._ctl(name, "stop", timeout=30)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pid_file = self._folder(i) / "pid"
                if pid_file.exists():
                    try:
                        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
        shutil.rmtree(self.base, ignore_errors=True)


def available() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        return "rabbitmq-server is not installed"
    if os.geteuid() != 0:
        return "starting RabbitMQ nodes as the rabbitmq user needs root"
    return None
