"""`make mutate`: break the safety code on purpose and check that a test notices.

Each mutant (cosmic-ray's mutation engine, plus `pass` for a call statement) is made in a copy of
the tree under .data/mutation/, so a run that is stopped never leaves a broken file behind; the
tests of its target run there (-x: the first failure kills it). Results go to a cosmic-ray
work-db per run and module (`cr-report .data/mutation/<run>-<module>.sqlite` lists them with their
diffs), a line per mutant to `.data/mutation/<run>.log`, and a table is printed.

  python tests/mutation/run.py             every mutant of every target (by hand: hours)
  python tests/mutation/run.py --ci        the CI subset, stopped after --budget seconds
  python tests/mutation/run.py --only services/notify/leader.py --survivors-of full
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import cosmic_ray.plugins
from cosmic_ray.commands.init import init
from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult

sys.path.insert(0, str(Path(__file__).parent))
from operators import Provider
from targets import EQUIVALENT, OPERATORS, TARGETS, Target

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / ".data" / "mutation"
COPIED = ("services", "tests", "policies", "pyproject.toml", "deploy", "docker-compose.yml")
KEEP = re.compile(OPERATORS + r"|dealerwatch/RemoveCallStatement")

cosmic_ray.plugins.OPERATOR_PROVIDERS["dealerwatch"] = Provider()


def copy_tree(into: Path) -> None:
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "mutation"))
        else:
            shutil.copy2(source, into / name)


def command(target: Target, tree: Path) -> str:
    tests = " ".join(str(tree / t) for t in target.tests if (tree / t.split("::")[0]).exists())
    # -x: the first failure kills the mutant; a test a mutant hangs fails at 90 s
    return f"{sys.executable} -m pytest -x -q -p no:cacheprovider -o timeout=90 --rootdir {tree} {tests}"


def plan(db: WorkDB, target: Target, tree: Path, *, ci: bool, only_jobs: set[tuple] | None) -> list:
    """The work items of one target: its functions (or its CI ones), the kept operators."""
    init([tree / target.module], db, {})
    functions = target.ci if ci else target.functions
    lines = (tree / target.module).read_text().splitlines()
    items, equivalent = [], []
    for item in db.pending_work_items:
        mutation = item.mutations[0]
        wanted = KEEP.match(mutation.operator_name) and mutation.definition_name in functions
        if wanted and only_jobs is not None:
            wanted = _key(mutation) in only_jobs
        why = wanted and _equivalent(target.module, mutation.operator_name, lines[mutation.start_pos[0] - 1])
        if why:
            equivalent.append(why)
            db.set_result(item.job_id, WorkResult(output=f"equivalent: {why}", worker_outcome=WorkerOutcome.SKIPPED))
        elif wanted:
            items.append(item)
        else:
            db.set_result(item.job_id, WorkResult(output="not a target", worker_outcome=WorkerOutcome.SKIPPED))
    return items, equivalent


def _equivalent(module: str, operator: str, line: str) -> str | None:
    for known in EQUIVALENT:
        if known.module in ("*", module) and re.search(known.operator, operator) and re.search(known.line, line):
            return known.why
    return None


def _key(mutation) -> tuple:
    module = "/".join(Path(mutation.module_path).parts[-3:])
    return (module, mutation.start_pos[0], mutation.definition_name, mutation.operator_name)


def survivors(run: str) -> set[tuple]:
    """What survived a run, from its log (`.data/mutation/<run>.log`, or a path)."""
    path = Path(run) if Path(run).exists() else OUT / f"{run}.log"
    found = set()
    for line in path.read_text().splitlines():
        if line.startswith("survived "):
            _, where, definition, operator = line.split()
            module, number = where.rsplit(":", 1)
            found.add((module, int(number), definition, operator))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ci", action="store_true", help="the CI subset of each target")
    parser.add_argument("--budget", type=float, default=0, help="stop starting mutants after this many seconds")
    parser.add_argument("--only", action="append", help="a target module (repeatable)")
    parser.add_argument("--survivors-of", help="run again only what survived that run")
    parser.add_argument("--name", default=None, help="the run's name (default: ci or full)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a mutant's tests may take")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th mutant from the i-th (runs side by side)")
    args = parser.parse_args()
    name = args.name or ("ci" if args.ci else "full")
    only_jobs = survivors(args.survivors_of) if args.survivors_of else None
    OUT.mkdir(parents=True, exist_ok=True)
    tree = OUT / f"tree-{name}"
    copy_tree(tree)
    os.chdir(tree)  # the tests import `services` from the mutated copy, and start it from there
    started, rows, survived = time.monotonic(), [], []
    log = (OUT / f"{name}.log").open("w")
    for target in TARGETS:
        if args.only and target.module not in args.only:
            continue
        database = OUT / f"{name}-{Path(target.module).stem}.sqlite"  # (init clears a work-db)
        database.unlink(missing_ok=True)
        with use_db(database, WorkDB.Mode.create) as db:
            items, equivalent = plan(db, target, tree, ci=args.ci, only_jobs=only_jobs)
            unreachable = sum(why.startswith("not reachable here") for why in equivalent)
            counts: Counter[str] = Counter({"equivalent": len(equivalent) - unreachable, "unreachable": unreachable})
            shard, shards = map(int, args.shard.split("/"))
            for item in items[shard::shards]:
                if args.budget and time.monotonic() - started > args.budget:
                    counts["not run (budget)"] += 1
                    continue
                result = mutate_and_test(item.mutations, command(target, tree), args.timeout)
                db.set_result(item.job_id, result)
                verdict = "killed" if result.is_killed else "survived"
                if result.worker_outcome != WorkerOutcome.NORMAL:
                    verdict = f"error ({result.worker_outcome})"
                counts[verdict] += 1
                mutation = item.mutations[0]
                where = f"{target.module}:{mutation.start_pos[0]} {mutation.definition_name}"
                line = f"{verdict:8} {where} {mutation.operator_name}"
                print(line, flush=True)
                print(line, file=log, flush=True)
                if verdict == "survived":
                    survived.append((target.module, mutation, result.diff))
            rows.append((target.module, counts))
    print(f"\n{'module':34} {'mutants':>7} {'killed':>6} {'survived':>8} {'not run':>7} {'equivalent':>10} {'unreachable':>11}")
    total: Counter[str] = Counter()
    for module, counts in rows:
        total.update(counts)
        run = counts["killed"] + counts["survived"]
        not_run, equivalent, unreachable = counts["not run (budget)"], counts["equivalent"], counts["unreachable"]
        print(f"{module:34} {run:7} {counts['killed']:6} {counts['survived']:8} {not_run:7} {equivalent:10} {unreachable:11}")
    run = total["killed"] + total["survived"]
    score = total["killed"] / run if run else 0.0
    print(
        f"{'all':34} {run:7} {total['killed']:6} {total['survived']:8} {total['not run (budget)']:7} {total['equivalent']:10}"
        f" {total['unreachable']:11}  score {score:.0%}\n(score: killed / run; targets.py says why each equivalent or"
        " unreachable mutant is not run)"
    )
    log.close()
    print(f"{time.monotonic() - started:.0f}s; details: cr-report {OUT}/{name}-<module>.sqlite, survivors in {log.name}")
    for module, mutation, diff in survived:
        print(f"\nSURVIVED {module}:{mutation.start_pos[0]} {mutation.operator_name}\n{diff}")
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
