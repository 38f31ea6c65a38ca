"""Real network peers for tests: a webhook receiver and a TCP proxy that can cut the broker."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aio_pika


class WebhookReceiver:
    """An HTTP server on 127.0.0.1:port that records every POST; stop() makes it unreachable."""

    def __init__(self, port: int, secret: bytes | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hook"
        self.secret = secret  # if set, requests with a wrong signature get 401 and are not kept
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.refused = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if receiver.secret is not None:
                    expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                    if not hmac.compare_digest(expected, self.headers.get("X-Dealerwatch-Signature", "")):
                        receiver.refused += 1
                        self.send_response(401)
                        self.end_headers()
                        return
                receiver.received.append(json.loads(body))
                receiver.headers.append(dict(self.headers))
                self.send_response(204)
                self.end_headers()

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


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; close() cuts every connection (a broker outage)."""

    def __init__(self, port: int, target: tuple[str, int]):
        self.port = port
        self.target = target
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
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
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
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


async def _drain(amqp_url: str, queue: str, limit: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(amqp_url)
    messages = []
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        while len(messages) < limit:
            message = await declared.get(fail=False, no_ack=True)
            if message is None:
                break
            messages.append(message)
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


class RobotServer:
    """Records what chat robots would receive: path, query and JSON body of every POST."""

    def __init__(self, port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.requests: list[dict] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "RobotServer":
        server = self
        from urllib.parse import parse_qs, urlsplit

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length", 0))
                server.requests.append({"path": parts.path, "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                                        "body": json.loads(self.rfile.read(length))})
                answer = json.dumps({"errcode": 0, "code": 0}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
