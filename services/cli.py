"""The `dealerwatch` command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from services.common import logs
    from services.common.settings import Settings

    settings = Settings()
    logs.configure(settings.log_level, args.service)
    if args.service == "ingest":
        from services.ingest.app import create_app

        host, port = settings.ingest_host, settings.ingest_port
    elif args.service == "rules":
        from services.rules.app import create_app

        host, port = settings.rules_host, settings.rules_port
    else:
        from services.notify.app import create_app

        host, port = settings.notify_host, settings.notify_port
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)
    return 0


def _read_file(load: Callable[[str], T], path: str) -> T:
    """A policy or routes file, or its problems (each with its line) and exit 1."""
    from services.common.yamlsource import FileError

    try:
        return load(path)
    except FileError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        raise SystemExit(1) from None


def _load_policy(path: str) -> Any:
    from services.rules import policy

    return _read_file(policy.load, path)


def _load_routes(path: str) -> Any:
    from services.notify import routes_file

    return _read_file(routes_file.load, path)


def _policy_check(args: argparse.Namespace) -> int:
    loaded = _load_policy(args.file)
    print(f"{args.file}: OK, {len(loaded.rules)} rules, version {loaded.version}")
    return 0


def _policy_schema(args: argparse.Namespace) -> int:
    from services.rules.spec import PolicySpec

    print(json.dumps(PolicySpec.model_json_schema(), indent=2))
    return 0


def _policy_test(args: argparse.Namespace) -> int:
    from services.rules.toolbox import runner

    if args.schema:
        print(json.dumps(runner.schema(), indent=2))
        return 0
    if not args.files:
        raise SystemExit("give the test files (e.g. policies/default.test.yaml), or --schema")
    return runner.main(args.files, as_json=args.format == "json", verbose=args.verbose)


def _policy_diff(args: argparse.Namespace) -> int:
    from services.rules.backtest import read_events
    from services.rules.toolbox import diff

    old, new = _load_policy(args.old), _load_policy(args.new)
    if (args.events is None) == (not args.archive):
        raise SystemExit("give an events file, or --archive (with --since)")
    if args.events is not None:
        read = list(read_events(args.events))
        events = [item for _, item in read if not isinstance(item, str)]
        for number, item in read:
            if isinstance(item, str):
                print(f"{args.events}:{number}: skipped, not a valid event: {item}", file=sys.stderr)
    else:
        events = _archived(args)
    found = diff.compare(events, old, new, _moment(args.now))
    print(json.dumps(found, ensure_ascii=False, indent=2) if args.format == "json" else diff.markdown(found), end="")
    return 0


def _archived(args: argparse.Namespace) -> list[Any]:
    """The archive's events from --since (as `events export` reads them)."""
    import asyncio

    from services.common import archive
    from services.common.events import parse_event
    from services.common.mongo import database
    from services.ctl.events import moment, settings_of

    async def read() -> list[Any]:
        client, db = database(settings_of(args))
        try:
            return [parse_event(e) async for e in archive.read(db, moment(args.since))]
        finally:
            client.close()

    return asyncio.run(read())


def _moment(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise SystemExit(f"{text}: give a time zone offset, e.g. 2026-03-01T00:00:00Z")
    return moment


def _backtest(args: argparse.Namespace) -> int:
    from services.rules.backtest import backtest
    from services.rules.toolbox import jobs

    policy = _load_policy(args.policy)  # refused here, with its lines, before any process starts
    count = args.jobs or jobs.default_jobs(args.events)
    if count <= 1:
        backtest(args.events, policy, _moment(args.now))
    else:
        jobs.backtest_jobs(args.events, policy, args.policy, _moment(args.now), count, sys.stdout, sys.stderr)
    return 0


def _explain(args: argparse.Namespace) -> int:
    from services.rules.backtest import explain

    return explain(args.events, _load_policy(args.policy), args.dealer, _moment(args.at))


def _routes_check(args: argparse.Namespace) -> int:
    spec = _load_routes(args.file).spec
    print(f"{args.file}: OK, {len(spec.receivers)} receivers")
    return 0


def _routes_test(args: argparse.Namespace) -> int:
    from services.notify import routes_file

    spec = _load_routes(args.file).spec
    labels = dict(item.split("=", 1) for item in args.labels.split(",") if "=" in item)
    for receiver in routes_file.receivers_for(spec, labels):
        print(receiver)
    return 0


def _asyncapi(args: argparse.Namespace) -> int:
    from services.common.asyncapi import document

    print(document().to_specification().to_json())
    return 0


def _dev(args: argparse.Namespace) -> int:
    from services import devstack

    return devstack.run()


def _api(handler: Callable[[argparse.Namespace, Any], int]) -> Callable[[argparse.Namespace], int]:
    """A command talking to notify's API: a refusal is the API's status and message, exit 1."""

    def run(args: argparse.Namespace) -> int:
        from services.ctl.client import Client, Refused

        try:
            return handler(args, Client.resolve(args.url, args.key, args.by))
        except Refused as exc:
            print(
                f"dealerwatch: {exc.status or 'error'}: {exc.message}" if exc.status else f"dealerwatch: {exc.message}",
                file=sys.stderr,
            )
            return 1

    return run


def _api_options() -> argparse.ArgumentParser:
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--url", help="notify's URL (else DEALERWATCH_URL, the config file, http://127.0.0.1:8081)")
    shared.add_argument("--key", help="an API key (else DEALERWATCH_KEY or the config file)")
    shared.add_argument("--by", help="who acts (else DEALERWATCH_BY, the config file's `by`, the login name)")
    shared.add_argument("--output", "-o", choices=["table", "json"], default="table")
    return shared


def main(argv: list[str] | None = None) -> int:
    from services.ctl import alerts, backup, demo, dlq, events, silences

    parser = argparse.ArgumentParser(prog="dealerwatch", description="Early warning for a dealer network.")
    commands = parser.add_subparsers(dest="command", required=True)
    shared = _api_options()

    alerts.add(commands, _api, shared)
    silences.add(commands, _api, shared)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=["table", "json"], default="table")
    dlq.add(commands, output)
    backup.add(commands)
    events.add(commands)
    demo.add(commands)

    serve = commands.add_parser("serve", help="run one service")
    serve.add_argument("service", choices=["ingest", "rules", "notify"])
    serve.set_defaults(func=_serve)

    dev = commands.add_parser("dev", help="run the whole stack locally (what `make run` does)")
    dev.set_defaults(func=_dev)

    policy = commands.add_parser("policy", help="work with policy files").add_subparsers(dest="action", required=True)
    check = policy.add_parser("check", help="validate a policy file (exit 1 with line numbers on errors)")
    check.add_argument("file")
    check.set_defaults(func=_policy_check)
    policy.add_parser("schema", help="print the policy JSON Schema").set_defaults(func=_policy_schema)
    test = policy.add_parser("test", help="run the rule tests of test files (events in, alerts expected out)")
    test.add_argument("files", nargs="*", metavar="FILE", help="e.g. policies/default.test.yaml")
    test.add_argument("--schema", action="store_true", help="print the test files' JSON Schema")
    test.add_argument("--format", choices=["text", "json"], default="text")
    test.add_argument("-v", "--verbose", action="store_true", help="every case's alerts, passed or not")
    test.set_defaults(func=_policy_test)
    diff = policy.add_parser("diff", help="what a policy change does on a history: the alerts only one policy raises, and why")
    diff.add_argument("old", metavar="OLD.yaml")
    diff.add_argument("new", metavar="NEW.yaml")
    diff.add_argument("events", nargs="?", metavar="EVENTS.ndjson", help="the history (or --archive)")
    diff.add_argument("--archive", action="store_true", help="the archive of accepted events (MongoDB) instead of a file")
    diff.add_argument("--since", default="90d", help="with --archive: 90d, 2026-01-01 or a time (default 90d)")
    diff.add_argument("--now", help="judge up to this time (default: the newest event)")
    diff.add_argument("--format", choices=["md", "json"], default="md")
    diff.add_argument("--mongo-url", help="with --archive: else DEALERWATCH_MONGO_URL")
    diff.add_argument("--database", help="with --archive: else DEALERWATCH_MONGO_DB")
    diff.set_defaults(func=_policy_diff)

    backtest = commands.add_parser("backtest", help="replay an NDJSON event file through a policy")
    backtest.add_argument("events")
    backtest.add_argument("--policy", default="policies/default.yaml")
    backtest.add_argument("--now", help="RFC 3339 end of the replay (default: the last event's time)")
    backtest.add_argument(
        "--jobs", type=int, help="processes, dealers spread over them (default: every core from 50,000 events, else 1)"
    )
    backtest.set_defaults(func=_backtest)

    explain = commands.add_parser("explain", help="every measure of one dealer and how far each rule is from firing")
    explain.add_argument("events")
    explain.add_argument("--dealer", required=True)
    explain.add_argument("--at", help="RFC 3339 time (default: the dealer's last event)")
    explain.add_argument("--policy", default="policies/default.yaml")
    explain.set_defaults(func=_explain)

    routes = commands.add_parser("routes", help="work with the routes file").add_subparsers(dest="action", required=True)
    routes_check = routes.add_parser("check", help="validate a routes file")
    routes_check.add_argument("file")
    routes_check.set_defaults(func=_routes_check)
    routes_test = routes.add_parser("test", help="which receivers an alert with these labels reaches")
    routes_test.add_argument("--labels", required=True, help="k=v,k=v (severity, rule_id, dealer_id, region, ...)")
    routes_test.add_argument("--file", default="routes.yaml")
    routes_test.set_defaults(func=_routes_test)

    commands.add_parser("asyncapi", help="print the AsyncAPI document of the messages").set_defaults(func=_asyncapi)

    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
