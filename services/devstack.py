"""Local stack for `make run` and the tests: RabbitMQ and a MongoDB-protocol server on this
machine, then the three services, all stopped again on Ctrl-C.

The MongoDB-protocol server is `secantusd-py` (a dev/test dependency, GPL-2.0),
always run as a separate process, never imported. Production uses real
MongoDB via docker-compose.yml, through the same driver code.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO
from urllib.parse import urlsplit

from services.common.settings import Settings

SERVICES = ("ingest", "rules", "notify")


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, seconds: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {host}:{port} exited with {process.returncode}")
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {seconds:.0f}s")


def ensure_rabbitmq(amqp_url: str) -> bool:
    """Start the local rabbitmq-server if the URL points here and nothing listens.
    Returns True if it was started by us."""
    parts = urlsplit(amqp_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    if port_open(host, port):
        return False
    if host not in ("127.0.0.1", "localhost") or not shutil.which("rabbitmq-server"):
        raise RuntimeError(f"RabbitMQ is not reachable at {host}:{port}; set DEALERWATCH_AMQP_URL")
    print(f"starting rabbitmq-server (nothing listened on {host}:{port})", flush=True)
    subprocess.run(["rabbitmq-server", "-detached"], check=True)
    deadline = time.monotonic() + 90
    while subprocess.run(["rabbitmqctl", "-q", "await_startup"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError("rabbitmq-server did not start within 90s")
        time.sleep(1)
    wait_port(host, port, 30)
    return True


def start_mongo(port: int, storage: str, log_file: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """A MongoDB-protocol server on 127.0.0.1:port (storage: a directory, or ':memory:')."""
    executable = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    if storage != ":memory:":
        Path(storage).mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage],
        stdout=log_file or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    wait_port("127.0.0.1", port, 30, process)
    return process


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run() -> int:
    """`make run`: everything in the foreground until Ctrl-C."""
    env = dict(os.environ)
    settings = Settings()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # explicit: a shell starting us in the background would leave SIGINT ignored
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    started_rabbit = ensure_rabbitmq(settings.amqp_url.get_secret_value())
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    if "DEALERWATCH_MONGO_URL" not in env:
        port = 27017
        if port_open("127.0.0.1", port):
            print(f"using the MongoDB-protocol server already on 127.0.0.1:{port}", flush=True)
        else:
            print(f"starting secantusdb on 127.0.0.1:{port}, data in .data/mongo", flush=True)
            children.append(("mongo", start_mongo(port, ".data/mongo")))
        env["DEALERWATCH_MONGO_URL"] = f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
    for name in SERVICES:
        command = [sys.executable, "-m", "services.cli", "serve", name]
        children.append((name, subprocess.Popen(command, env=env)))
    print(
        f"dealerwatch is running: ingest http://{settings.ingest_host}:{settings.ingest_port}/docs, "
        f"operations board http://{settings.notify_host}:{settings.notify_port}/ (Ctrl-C stops)",
        flush=True,
    )
    code = 0
    try:
        while True:
            for name, child in children:
                if child.poll() is not None:
                    print(f"{name} exited with {child.returncode}; stopping the stack", flush=True)
                    raise SystemExit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping", flush=True)
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        for _, child in reversed(children):
            stop(child)
        if started_rabbit:
            subprocess.run(["rabbitmqctl", "-q", "stop"], check=False)
    return code
