"""Real network peers for tests: a webhook receiver and a TCP proxy that can cut the broker."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import aio_pika
import pymongo

from services.common.topology import Topology, event_routing_key
from services.notify.channels.webhook import verify


class _RecordingServer:
    """An HTTP server on 127.0.0.1:port; subclasses answer POSTs in `post(handler, body)`."""

    port: int
    _server: ThreadingHTTPServer | None = None

    def post(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        raise NotImplementedError

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                owner.post(self, self.rfile.read(int(self.headers.get("content-length", 0))))

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class WebhookReceiver(_RecordingServer):
    """Records every POST; stop() makes it unreachable."""

    def __init__(self, port: int, secrets: list[bytes] | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hook"
        self.secrets = secrets  # if set, requests failing the README's verification get 401 and are not kept
        self.received: list[dict] = []
        self.times: list[float] = []  # when each of `received` came
        self.headers: list[dict] = []
        self.refused = 0

    def post(self, handler, body: bytes) -> None:
        if self.secrets is not None and not verify(
            handler.headers.get("X-Dealerwatch-Signature", ""), body, self.secrets, time.time()
        ):
            self.refused += 1
            handler.send_response(401)
            handler.end_headers()
            return
        self.times.append(time.time())
        self.received.append(json.loads(body))
        self.headers.append(dict(handler.headers))
        handler.send_response(204)
        handler.end_headers()


class FailingReceiver(_RecordingServer):
    """Answers 503 to the notifications about the alerts in `failing` (a receiver that cannot take
    them; None: all of them), 204 to the others; notes when each failed."""

    def __init__(self, port: int, failing: set[str] | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hook"
        self.failing = failing
        self.failed: list[float] = []
        self.taken = 0

    def post(self, handler, body: bytes) -> None:
        if self.failing is None or json.loads(body).get("alert_id") in self.failing:
            self.failed.append(time.time())
            handler.send_response(503)
        else:
            self.taken += 1
            handler.send_response(204)
        handler.end_headers()


class HangingReceiver(_RecordingServer):
    """Takes the request and never answers (a receiver that hangs): the sender times out."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hook"
        self.requests = 0
        self._release = threading.Event()

    def post(self, handler, body: bytes) -> None:
        self.requests += 1
        self._release.wait(60)

    def stop(self) -> None:
        self._release.set()
        super().stop()


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; close() cuts every connection (a broker outage),
    pause() holds what the target sends until resume() (a broker that stopped answering),
    hold_when(words) holds the first request holding them and everything after it on that
    connection until release_writes() (a process stopped between two of its writes)."""

    def __init__(self, port: int, target: tuple[str, int]):
        self.port = port
        self.target = target
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._answering = threading.Event()
        self._answering.set()
        self.sent_since_pause = 0  # bytes the client sent since pause()
        self._held_words: list[bytes] | None = None
        self.write_held = threading.Event()
        self._write_released = threading.Event()

    def pause(self) -> None:
        self._answering.clear()
        self.sent_since_pause = 0

    def hold_writes_to(self, collection: str) -> threading.Event:
        """Returns an event set once a write is held."""
        return self.hold_when("update", collection)

    def hold_when(self, *words: str) -> threading.Event:
        """Hold the first request (and what follows it on its connection) holding all these
        words, e.g. a command and a collection; returns an event set once one is held."""
        self._held_words = [word.encode() for word in words]
        self.write_held = threading.Event()
        self._write_released = threading.Event()
        return self.write_held

    def release_writes(self) -> None:
        """The held request goes on to the database, and nothing more is held."""
        self._held_words = None
        self._write_released.set()

    def _hold(self, data: bytes) -> bool:
        """Called with what the client sends: counted while paused, held if hold_when() says so."""
        if not self._answering.is_set():
            self.sent_since_pause += len(data)
        words = self._held_words
        return words is not None and all(word in data for word in words)

    def resume(self) -> None:
        self._answering.set()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, None, self._hold), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self._answering), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, flowing: threading.Event | None = None, hold=None) -> None:
        try:
            while data := source.recv(65536):
                if flowing is not None:
                    flowing.wait()
                if hold is not None and hold(data):
                    self.write_held.set()
                    self._write_released.wait()  # until release_writes(), or for good
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        if self._listener:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._sockets.clear()


async def _queue_depth(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count


def queue_depth(amqp_url: str, queue: str) -> int:
    return asyncio.run(_queue_depth(amqp_url, queue))


def declared(amqp_url: str, queue: str) -> bool:
    """The queue exists (a service declares its topology just after it answers /readyz)."""
    try:
        queue_depth(amqp_url, queue)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    return True


# partitions of a test stack (conftest.stack_env): fewer than the default 32 quorum queues to
# declare and delete per test (tests/e2e/test_partitions.py runs workers over the default)
TEST_PARTITIONS = 4


def rules_depth(amqp_url: str, namespace: str, partitions: int = TEST_PARTITIONS) -> int:
    """Messages waiting in the rules partitions' queues, all together."""
    return sum(queue_depth(amqp_url, queue.name) for queue in Topology(namespace, partitions).rules_queues)


def event_key(event_type: str, dealer_id: str, partitions: int = TEST_PARTITIONS) -> str:
    """The routing key ingest gives an event (its dealer's partition first)."""
    return event_routing_key(event_type, dealer_id, partitions)


def publish_events(amqp_url: str, namespace: str, *events: dict, partitions: int = TEST_PARTITIONS) -> None:
    """Publish events (dicts) as ingest would: each with its own routing key, in order."""
    for event in events:
        key = event_key(event["type"], event["dealer_id"], partitions)
        publish(amqp_url, Topology(namespace, partitions).events.name, key, json.dumps(event).encode())


def drain_rules(amqp_url: str, namespace: str, partitions: int = TEST_PARTITIONS) -> list:
    """Every message waiting in the rules partitions' queues (gone afterwards)."""
    return [m for queue in Topology(namespace, partitions).rules_queues for m in drain(amqp_url, queue.name)]


async def _drain(amqp_url: str, queue: str, limit: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """By consuming, not basic.get: the rules partitions' queues have a single active consumer,
    which refuses basic.get."""
    connection = await aio_pika.connect(amqp_url)
    messages: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        waiting = declared.declaration_result.message_count
        if not waiting:
            return messages
        async with declared.iterator() as incoming:
            async for message in incoming:
                await message.ack()
                messages.append(message)
                if len(messages) >= min(limit, waiting):
                    break
    return messages


def drain(amqp_url: str, queue: str, limit: int = 100) -> list:
    """Take up to `limit` messages off a queue (gone afterwards)."""
    return asyncio.run(_drain(amqp_url, queue, limit))


async def _publish(amqp_url: str, exchange: str, routing_key: str, bodies: list[bytes]) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=True)
        for body in bodies:
            await target.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type="application/json"),
                routing_key=routing_key,
            )


def publish(amqp_url: str, exchange: str, routing_key: str, *bodies: bytes) -> None:
    """Publish raw messages as another system would (persistent, confirmed)."""
    asyncio.run(_publish(amqp_url, exchange, routing_key, list(bodies)))


class RobotServer(_RecordingServer):
    """Records what chat robots would receive: path, query and JSON body of every POST."""

    def __init__(self, port: int, answer: bytes = b'{"errcode": 0, "code": 0}'):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.requests: list[dict] = []
        self.times: list[float] = []
        self.answer = answer  # what it answers with 200 (a robot may answer what no robot should)

    def post(self, handler, body: bytes) -> None:
        parts = urlsplit(handler.path)
        self.requests.append(
            {"path": parts.path, "query": {k: v[0] for k, v in parse_qs(parts.query).items()}, "body": json.loads(body)}
        )
        self.times.append(time.time())
        answer = self.answer
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)


async def _binding(amqp_url: str, exchange: str, queue: str, routing_key: str, bound: bool, ours: bool = True) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True, passive=not (bound and ours))  # else a queue of the stack's
        await (declared.bind if bound else declared.unbind)(exchange, routing_key=routing_key)


def bind(amqp_url: str, exchange: str, queue: str, routing_key: str = "#", ours: bool = True) -> None:
    """A queue of the test's own (declared here) or of the stack's bound to an exchange."""
    asyncio.run(_binding(amqp_url, exchange, queue, routing_key, True, ours))


def unbind(amqp_url: str, exchange: str, queue: str, routing_key: str = "#") -> None:
    asyncio.run(_binding(amqp_url, exchange, queue, routing_key, False))


def events_counted(mongo_url: str, database: str, dealer: str) -> int | None:
    """The events rules stored as counted for a dealer (None: no state stored)."""
    with pymongo.MongoClient(mongo_url) as client:
        doc = client[database]["rules_dealers"].find_one({"_id": dealer})
    return None if doc is None else doc["events"]


def unacked(namespace: str) -> int:
    """Messages of the namespace's queues delivered and not yet acked (the broker's own count)."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages_unacknowledged"], capture_output=True, text=True, check=True
    )
    return sum(int(line.split()[1]) for line in listed.stdout.splitlines() if line.startswith(f"{namespace}."))
