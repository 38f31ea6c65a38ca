"""`dealerwatch dlq list|show|replay|purge [--queue events|signals|deliveries]`: the dead-letter
queue read, each message with why it went there (its reason header), and sent back once the cause
is fixed. Replaying is safe: event ids and alert ids make a message counted twice count once.

Reading takes every message off the queue unacknowledged and gives back those not replayed or
purged when the command ends (their delivery count grows; the queue has no delivery limit). A
replayed message goes to the exchange and routing key it came from; one that fails again comes
back with its new reason (the service that refuses it dead-letters it again). A delivery is not a
broker message: it is not replayed (reopen or resolve its alert)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from services.common.deadletter import kind_of
from services.common.settings import Settings
from services.common.topology import AT_HEADER, ERROR_HEADER, KIND_HEADER, STAGE_HEADER, Topology

from .output import emit

KINDS = ("events", "signals", "deliveries")
MAX_READ = 100_000  # messages read at once (a larger queue: purge or replay by parts)
COLUMNS = (("id", "id"), ("queue", "queue"), ("at", "at"), ("routing key", "routing_key"), ("reason", "reason"))
DEALERWATCH_HEADERS = (ERROR_HEADER, STAGE_HEADER, KIND_HEADER, AT_HEADER, "x-original-exchange", "x-original-routing-key")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else "" if value is None else str(value)


def describe(message: AbstractIncomingMessage, topology: Topology) -> dict[str, Any]:
    headers = message.headers or {}
    stage, original = _text(headers.get(STAGE_HEADER)), _text(headers.get("x-original-exchange"))
    kind = _text(headers.get(KIND_HEADER)) or kind_of(topology, stage, original)  # (dead letters older than the header)
    exchange = original or (topology.alert_signals.name if kind == "signals" else topology.events.name)
    return {
        "id": message.message_id or "",
        "queue": kind,
        "at": _text(headers.get(AT_HEADER)),
        "routing_key": _text(headers.get("x-original-routing-key")) or message.routing_key or "",
        "exchange": exchange,
        "stage": stage,
        "reason": _text(headers.get(ERROR_HEADER)),
    }


class DeadLetters:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topology = Topology(settings.namespace, settings.partitions)

    async def run(self, work: Callable[[AbstractChannel, list[tuple[AbstractIncomingMessage, dict[str, Any]]]], Any]) -> Any:
        connection = await aio_pika.connect(self.settings.amqp_urls()[0], timeout=10)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)  # unroutable: an error
            queue = await channel.get_queue(self.topology.dead_letter_queue.name, ensure=True)
            read: list[tuple[AbstractIncomingMessage, dict[str, Any]]] = []
            while len(read) < MAX_READ and (message := await queue.get(no_ack=False, fail=False)) is not None:
                read.append((message, describe(message, self.topology)))
            return await work(channel, read)  # what is not acked goes back when the channel closes


def _selected(found: list[tuple[Any, dict[str, Any]]], args: argparse.Namespace) -> list[tuple[Any, dict[str, Any]]]:
    chosen = [(m, d) for m, d in found if args.queue is None or d["queue"] == args.queue]
    ids = set(getattr(args, "ids", None) or ())
    if ids:
        chosen = [(m, d) for m, d in chosen if d["id"] in ids]
    if getattr(args, "reason", None):
        pattern = re.compile(args.reason)
        chosen = [(m, d) for m, d in chosen if pattern.search(d["reason"])]
    return chosen


async def _list(dead: DeadLetters, args: argparse.Namespace) -> int:
    async def work(channel: AbstractChannel, found: list[Any]) -> int:
        shown = [d for _, d in _selected(found, args)]
        emit(shown[args.offset : args.offset + args.limit], COLUMNS, args.output)
        if args.output == "table" and len(shown) > args.offset + args.limit:
            print(f"... {len(shown) - args.offset - args.limit} more (--offset {args.offset + args.limit})", file=sys.stderr)
        return 0

    return int(await dead.run(work))


async def _show(dead: DeadLetters, args: argparse.Namespace) -> int:
    async def work(channel: AbstractChannel, found: list[Any]) -> int:
        matching = [(m, d) for m, d in found if d["id"] == args.id]
        if not matching:
            print(f"dealerwatch: 404: no dead letter with id {args.id!r}", file=sys.stderr)
            return 1
        message, described = matching[0]
        try:
            body: Any = json.loads(message.body)
        except ValueError:
            body = message.body.decode("utf-8", "replace")
        headers = {k: _text(v) for k, v in (message.headers or {}).items()}
        json.dump({**described, "headers": headers, "body": body}, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
        return 0

    return int(await dead.run(work))


def _wants_a_selection(args: argparse.Namespace) -> str | None:
    if not (args.all or args.ids or args.reason):
        return "name what to take: --id ID (several), --reason REGEX or --all"
    return None


async def _replay(dead: DeadLetters, args: argparse.Namespace) -> int:
    if (problem := _wants_a_selection(args)) is not None:
        print(f"dealerwatch: {problem}", file=sys.stderr)
        return 1

    async def work(channel: AbstractChannel, found: list[Any]) -> int:
        replayed = kept = 0
        for message, described in _selected(found, args):
            if described["queue"] == "deliveries":
                print(f"{described['id']}: a delivery is not replayed (reopen or resolve its alert); kept", file=sys.stderr)
                kept += 1
                continue
            headers = {k: v for k, v in (message.headers or {}).items() if k not in DEALERWATCH_HEADERS and k != "x-death"}
            outgoing = aio_pika.Message(
                message.body,
                headers=headers,
                message_id=message.message_id,
                content_type=message.content_type or "application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            try:
                exchange = await channel.get_exchange(described["exchange"], ensure=False)
                await exchange.publish(outgoing, routing_key=described["routing_key"], mandatory=True, timeout=10)
            except Exception as exc:  # noqa: BLE001 - unroutable or refused: it stays in the dead-letter queue
                print(f"{described['id']}: not replayed ({type(exc).__name__}: {exc}); kept", file=sys.stderr)
                kept += 1
                continue
            await message.ack()
            replayed += 1
        print(f"replayed {replayed}, kept {kept}")
        return 0 if kept == 0 else 1

    return int(await dead.run(work))


async def _purge(dead: DeadLetters, args: argparse.Namespace) -> int:
    if (problem := _wants_a_selection(args)) is not None:
        print(f"dealerwatch: {problem}", file=sys.stderr)
        return 1

    async def work(channel: AbstractChannel, found: list[Any]) -> int:
        chosen = _selected(found, args)
        if not chosen:
            print("nothing to purge")
            return 0
        if not args.yes:
            answer = input(f"purge {len(chosen)} dead letter(s) for good? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("nothing purged")
                return 1
        for message, _ in chosen:
            await message.ack()
        print(f"purged {len(chosen)}")
        return 0

    return int(await dead.run(work))


def add(commands: Any, output: argparse.ArgumentParser) -> None:
    dlq = commands.add_parser("dlq", help="read, replay and purge the dead-letter queue (the broker)")
    actions = dlq.add_subparsers(dest="action", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--queue", choices=KINDS, help="only dead letters that were events, signals or deliveries")
    where.add_argument("--amqp-url", help="else DEALERWATCH_AMQP_URL")
    where.add_argument("--namespace", help="else DEALERWATCH_NAMESPACE")
    choose = argparse.ArgumentParser(add_help=False)
    choose.add_argument("--id", dest="ids", action="append", help="a dead letter's id (several: repeat)")
    choose.add_argument("--reason", help="a regular expression its reason matches")
    choose.add_argument("--all", action="store_true")

    listing = actions.add_parser("list", parents=[where, output], help="dead letters with their reason, time and routing key")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(func=_run(_list))
    show = actions.add_parser("show", parents=[where], help="one dead letter whole: headers and body")
    show.add_argument("id")
    show.set_defaults(func=_run(_show))
    replay = actions.add_parser("replay", parents=[where, choose], help="send back to where they came from")
    replay.set_defaults(func=_run(_replay))
    purge = actions.add_parser("purge", parents=[where, choose], help="drop for good (asks first; --yes for scripts)")
    purge.add_argument("--yes", action="store_true")
    purge.set_defaults(func=_run(_purge))


def _run(command: Callable[[DeadLetters, argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        overrides = {k: v for k, v in (("amqp_url", args.amqp_url), ("namespace", args.namespace)) if v}
        settings = Settings(**overrides)
        try:
            return int(asyncio.run(command(DeadLetters(settings), args)))
        except (OSError, aio_pika.exceptions.AMQPError) as exc:
            print(f"dealerwatch: the broker is not reachable ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 1

    return run
