"""The `dealerwatch` command."""

from __future__ import annotations

import argparse
import json
import sys


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


def _policy_check(args: argparse.Namespace) -> int:
    from services.rules import policy

    try:
        loaded = policy.load(args.file)
    except policy.PolicyError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    print(f"{args.file}: OK, {len(loaded.rules)} rules, version {loaded.version}")
    return 0


def _policy_schema(args: argparse.Namespace) -> int:
    from services.rules.policy import PolicySpec

    print(json.dumps(PolicySpec.model_json_schema(), indent=2))
    return 0


def _asyncapi(args: argparse.Namespace) -> int:
    from services.common.asyncapi import document

    print(document().to_specification().to_json())
    return 0


def _dev(args: argparse.Namespace) -> int:
    from services import devstack

    return devstack.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dealerwatch", description="Early warning for a dealer network.")
    commands = parser.add_subparsers(dest="command", required=True)

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

    commands.add_parser("asyncapi", help="print the AsyncAPI document of the messages").set_defaults(func=_asyncapi)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
