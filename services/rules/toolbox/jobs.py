"""`dealerwatch backtest --jobs N`: dealers are independent (judge.py), so a history is split by
dealer into N parts, each judged by a process of its own with the same `now` (the newest event
of the whole file), and the outputs put together: each dealer's lines in time order, part after
part; the summary is the sum of the parts'."""

from __future__ import annotations

import collections
import datetime as dt
import json
import multiprocessing
import os
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, Any

from ..backtest import backtest, summary
from ..policy import load

AUTO_FROM = 50_000  # events from which the default is every core (below, a process start costs more than it saves)


def default_jobs(path: str) -> int:
    with open(path, "rb") as handle:
        lines = sum(1 for _ in handle)
    return (os.cpu_count() or 1) if lines >= AUTO_FROM else 1


def _part(index: int, path: str, policy_path: str, now: str | None, out_path: str) -> tuple[int, dict[str, Any], str]:
    """(in the child) One part's backtest: (index, result, what it wrote to stderr)."""
    import io

    err = io.StringIO()
    with open(out_path, "w", encoding="utf-8") as out:
        result = backtest(path, load(policy_path), dt.datetime.fromisoformat(now) if now else None, out, err, summarize=False)
    return index, result, err.getvalue()


def split(path: str, parts: int, folder: Path) -> tuple[list[str], dt.datetime | None]:
    """The file in `parts` files by dealer (a line that is not an event goes to the first, to be
    reported there), and the newest event time of all."""
    names = [str(folder / f"part-{k}.ndjson") for k in range(parts)]
    handles = [open(name, "w", encoding="utf-8") for name in names]  # noqa: SIM115 - closed below
    newest: dt.datetime | None = None
    try:
        with open(path, encoding="utf-8") as source:
            for line in source:
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    dealer, at = (
                        str(item["dealer_id"]),
                        dt.datetime.fromisoformat(str(item["occurred_at"]).replace("Z", "+00:00")),
                    )
                except (ValueError, KeyError, TypeError):
                    handles[0].write(line)
                    continue
                if at.tzinfo is not None and (newest is None or at > newest):
                    newest = at
                handles[zlib.crc32(dealer.encode()) % parts].write(line)
    finally:
        for handle in handles:
            handle.close()
    return names, newest


def backtest_jobs(path: str, policy_path: str, now: dt.datetime | None, jobs: int, out: IO[str], err: IO[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dealerwatch-backtest-") as folder:
        names, newest = split(path, jobs, Path(folder))
        end = now or newest
        context = multiprocessing.get_context("spawn")  # the engine's threads are not for copying
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [
                pool.submit(_part, k, name, policy_path, end.isoformat() if end else None, f"{name}.out")
                for k, name in enumerate(names)
            ]
            results = sorted(f.result() for f in futures)
        opened: collections.Counter[tuple[str, str]] = collections.Counter()
        problems: collections.Counter[str] = collections.Counter()
        dealers = 0
        for index, result, errors in results:
            with open(f"{names[index]}.out", encoding="utf-8") as part:
                for line in part:
                    out.write(line)
            err.write(errors.replace(names[index], f"{path} (part {index + 1} of {jobs})"))
            opened.update(result["opened"])
            problems.update(result["problems"])
            dealers += result["dealers"]
    summary(opened, problems, dealers, err)
    return {"opened": dict(opened), "problems": dict(problems), "dealers": dealers}
