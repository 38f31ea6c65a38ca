"""Shared fixtures: the real RabbitMQ of this machine, a MongoDB-protocol server started for the
session, and the services started as real processes, each test in its own namespace and database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import httpx
import pytest
from helpers import TEST_PARTITIONS

from services import devstack
from services.common.topology import Topology

ROOT = Path(__file__).resolve().parents[1]
AMQP_URL = os.environ.get("DEALERWATCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PORTS = {"ingest": "DEALERWATCH_INGEST_PORT", "rules": "DEALERWATCH_RULES_PORT", "notify": "DEALERWATCH_NOTIFY_PORT"}


# a test that takes one of these needs the broker or the database: `make test-fast` skips it
STACK_FIXTURES = {"amqp_url", "mongo_url", "namespace", "service_env", "services"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


# CI (`.ci/run`) installs every tool a test needs (chromium, docker-compose, RabbitMQ itself):
# there, a test skipped for a missing tool is a failure, not a quiet pass
NO_SKIPS = os.environ.get("DEALERWATCH_NO_SKIPS") == "1"
_skipped: list[str] = []


def _note_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        why = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        _skipped.append(f"{report.nodeid}: {why}")


pytest_runtest_logreport = pytest_collectreport = _note_skip


def pytest_terminal_summary(terminalreporter) -> None:
    for line in _skipped:
        terminalreporter.write_line(f"SKIPPED where nothing may be (DEALERWATCH_NO_SKIPS=1): {line}", red=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _skipped and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def amqp_url() -> str:
    devstack.ensure_rabbitmq(AMQP_URL)
    return AMQP_URL


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory) -> str:
    port = free_port()
    log = open(tmp_path_factory.mktemp("mongo") / "secantusdb.log", "wb")  # noqa: SIM115 - open for the session
    process = devstack.start_mongo(port, str(tmp_path_factory.mktemp("mongo-data")), log_file=log)
    yield f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
    devstack.stop(process)
    log.close()


@pytest.fixture
def namespace(amqp_url):
    """A fresh set of exchanges and queues for one test; deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    asyncio.run(_delete_topology(amqp_url, name))


async def _delete_topology(amqp_url: str, name: str, partitions: int = TEST_PARTITIONS) -> None:
    topology = Topology(name, partitions)
    queues = [queue.name for queue in topology.queues] + [f"{name}.test-subscriber"]
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        for queue in queues:
            channel = await connection.channel()
            try:
                await channel.queue_delete(queue)
            except Exception:  # noqa: BLE001 - never declared in this test
                pass
        for exchange in topology.exchanges:
            channel = await connection.channel()
            try:
                await channel.exchange_delete(exchange.name)
            except Exception:  # noqa: BLE001
                pass


def stack_env(amqp_url: str, mongo_url: str, namespace: str, **settings: str) -> dict[str, str]:
    """The environment of a stack's processes: this one's without its DEALERWATCH_ settings, the
    broker, database and namespace, the default policy, and `settings` (name -> DEALERWATCH_NAME)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALERWATCH_")}
    env.update(
        DEALERWATCH_AMQP_URL=amqp_url,
        DEALERWATCH_MONGO_URL=mongo_url,
        DEALERWATCH_MONGO_DB=namespace,
        DEALERWATCH_NAMESPACE=namespace,
        DEALERWATCH_POLICY_FILE=str(ROOT / "policies" / "default.yaml"),
        DEALERWATCH_PARTITIONS=str(TEST_PARTITIONS),
    )
    env.update({f"DEALERWATCH_{name.upper()}": value for name, value in settings.items()})
    return env


@pytest.fixture
def service_env(amqp_url, mongo_url, namespace) -> dict:
    return stack_env(
        amqp_url,
        mongo_url,
        namespace,
        delivery_retry_initial_seconds="0.2",
        delivery_retry_max_seconds="0.5",
        receivers_allow_private="true",  # the tests' receivers listen on 127.0.0.1
        # the clock at wall time and holds of a second: a test's old events are judged at once
        # (the event-time tests set the production grace and holds longer than their pauses)
        clock_grace_seconds="0",
        clock_hold_seconds="1",
    )


class Service:
    """One service as a real process (`dealerwatch serve NAME`)."""

    def __init__(self, name: str, env: dict, log_dir: Path):
        self.name = name
        self.env = env
        self.url = f"http://127.0.0.1:{env[PORTS[name]]}"
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen | None = None

    def start(self, ready: bool = True) -> Service:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open while the process runs
        profile = []  # the benchmark's profiles: pyinstrument writes one when the service stops
        if directory := self.env.get("DEALERWATCH_PROFILE_DIR"):
            output = f"{directory}/{self.log_path.stem}.txt"
            profile = ["-m", "pyinstrument", "-i", "0.005", "--use-timing-thread", "-r", "text", "-o", output]
        self.process = subprocess.Popen(
            [sys.executable, *profile, "-m", "services.cli", "serve", self.name],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {seconds}s:\n{self.log()}")

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
                self.process.wait()
            elif self.env.get("DEALERWATCH_PROFILE_DIR"):  # pyinstrument writes its profile on Ctrl-C
                self.process.send_signal(signal.SIGINT)
                self.process.wait(60)
            else:
                devstack.stop(self.process)
        if hasattr(self, "_log"):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


@pytest.fixture
def services(service_env, tmp_path):
    """Factory: services("ingest", "rules") starts those processes; all are stopped at the end."""
    started: list[Service] = []

    def start(*names: str, env: dict | None = None, ready: bool = True) -> list[Service]:
        result = []
        for name in names:
            own_port = {PORTS[name]: str(free_port())}  # several instances of one service may run
            service = Service(name, {**service_env, **own_port, **(env or {})}, tmp_path).start(ready=ready)
            started.append(service)
            result.append(service)
        return result

    yield start
    for service in started:
        service.stop()


def wait_for(predicate, seconds: float = 20, interval: float = 0.05):
    """Poll until predicate() is truthy; returns its value or fails with the last one."""
    deadline = time.monotonic() + seconds
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {seconds}s (last value: {value!r})")


@pytest.fixture
def hooks():
    """Factory: hooks() starts a recording webhook receiver (or hooks(OtherKind)); all are
    stopped at the end."""
    from helpers import WebhookReceiver

    started = []

    def start(kind=WebhookReceiver):
        server = kind(free_port()).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def routes_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def default_policy():
    """The default policy, compiled (the rules' unit tests judge with it)."""
    from services.rules import policy

    return policy.load(ROOT / "policies" / "default.yaml")


@pytest.fixture
def core(default_policy):
    """A rules core on the default policy, its engine rulesets released afterwards."""
    from services.rules.core import RulesCore

    core = RulesCore(default_policy)
    yield core
    core.close()
