"""`dealerwatch export --out DIR` and `dealerwatch import DIR`: every collection of dealerwatch's
database as one file of canonical Extended JSON per collection (types kept exactly: int64,
doubles, dates), for the local MongoDB-protocol server, which has no mongodump; on real MongoDB
`mongodump`/`mongorestore` do the same (docs/operations.md).

What is not exported: the lease of the notify publisher and the rules workers' heartbeats
(`leases`, `rules_workers`: who runs now, meaningless in a restored database).
Run it with the services stopped, or accept a copy of a moving target: each collection is read
whole, one after the other (the alert history and its change log may then differ by what
changed in between; rules states are each written whole, never half)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pymongo
from bson import json_util

from services.common.settings import Settings

SKIPPED = ("leases", "rules_workers")
BATCH = 1000
SUFFIX = ".ndjson"


def _database(settings: Settings) -> Any:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(settings.mongo_url.get_secret_value(), tz_aware=True)
    return client, client[settings.mongo_db]


def export(settings: Settings, out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    client, db = _database(settings)
    counts = {}
    with client:
        for name in sorted(db.list_collection_names()):
            if name in SKIPPED or name.startswith("system."):
                continue
            with (out / f"{name}{SUFFIX}").open("w", encoding="utf-8") as handle:
                count = 0
                for doc in db[name].find({}).sort("_id", 1):
                    handle.write(json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n")
                    count += 1
            counts[name] = count
    return counts


def import_(settings: Settings, source: Path, replace: bool) -> dict[str, int]:
    files = sorted(source.glob(f"*{SUFFIX}"))
    if not files:
        raise ValueError(f"{source}: no {SUFFIX} files (the output of `dealerwatch export`)")
    client, db = _database(settings)
    counts = {}
    with client:
        occupied = {f.stem: n for f in files if (n := db[f.stem].estimated_document_count())}
        if occupied and not replace:
            listed = ", ".join(f"{name} ({count:,})" for name, count in sorted(occupied.items()))
            raise ValueError(
                f"the database {settings.mongo_db!r} holds documents already: {listed}; import into an empty "
                "database, or pass --replace to drop those collections first"
            )
        for path in files:
            collection = db[path.stem]
            if replace:
                collection.delete_many({})
            batch, count = [], 0
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        batch.append(json_util.loads(line, json_options=json_util.CANONICAL_JSON_OPTIONS))
                    if len(batch) >= BATCH:
                        collection.insert_many(batch, ordered=True)
                        count, batch = count + len(batch), []
            if batch:
                collection.insert_many(batch, ordered=True)
                count += len(batch)
            counts[path.stem] = count
    return counts


def add(commands: Any) -> None:
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--mongo-url", help="else DEALERWATCH_MONGO_URL")
    where.add_argument("--database", help="else DEALERWATCH_MONGO_DB")
    out = commands.add_parser("export", parents=[where], help="every collection of the database to DIR (a backup)")
    out.add_argument("--out", required=True, type=Path)
    out.set_defaults(func=_export)
    into = commands.add_parser("import", parents=[where], help="a directory written by `export` into the database")
    into.add_argument("source", type=Path)
    into.add_argument("--replace", action="store_true", help="drop the collections the export has first")
    into.set_defaults(func=_import)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in (("mongo_url", args.mongo_url), ("mongo_db", args.database)) if v}
    return Settings(**overrides)


def _export(args: argparse.Namespace) -> int:
    counts = export(_settings(args), args.out)
    for name, count in counts.items():
        print(f"{name:<24} {count:>10,}")
    print(f"exported {sum(counts.values()):,} documents of {len(counts)} collections to {args.out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    try:
        counts = import_(_settings(args), args.source, args.replace)
    except ValueError as exc:
        print(f"dealerwatch: {exc}", file=sys.stderr)
        return 1
    for name, count in counts.items():
        print(f"{name:<24} {count:>10,}")
    print(f"imported {sum(counts.values()):,} documents of {len(counts)} collections; start the services (they make the indexes)")
    return 0
