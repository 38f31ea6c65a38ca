"""`dealerwatch backtest --jobs N`: dealers are independent (judge.py), so a history is judged in
N parts, each the dealers of a crc32 of their id, with the same `now` (the newest event of the
whole file), and the outputs put together: each dealer's lines in time order, part after part;
the summary is the sum of the parts'.

Each part reads the whole file and judges its own lines (a JSON parse of a line to know whose it
is costs a few microseconds, judging it a hundred): nothing waits for a split. The command's own
process judges the first part while the others start (a process of its own takes about a second
to import what judging needs)."""

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
from ..policy import Policy, load

AUTO_FROM = 50_000  # events from which the default is every core (below, a process start costs more than it saves)


def default_jobs(path: str) -> int:
    with open(path, "rb") as handle:
        lines = sum(1 for _ in handle)
    return (os.cpu_count() or 1) if lines >= AUTO_FROM else 1


class Part:
    """Which lines of a history are one part's: those of its dealers, and a line that is not an
    event in the first part (reported there). It notes the newest event time of every line."""

    def __init__(self, index: int, parts: int):
        self.index, self.parts = index, parts
        self.newest: dt.datetime | None = None

    def takes(self, line: str) -> bool:
        try:
            item = json.loads(line)
            dealer, at = (
                str(item["dealer_id"]),
                dt.datetime.fromisoformat(str(item["occurred_at"]).replace("Z", "+00:00")),
            )
        except (ValueError, KeyError, TypeError):
            return self.index == 0
        if at.tzinfo is not None and (self.newest is None or at > self.newest):
            self.newest = at
        return zlib.crc32(dealer.encode()) % self.parts == self.index


def _part(index: int, parts: int, path: str, policy: Policy | str, now: str | None, out_path: str) -> tuple[dict[str, Any], str]:
    """One part's backtest (in a process of its own: the policy by its path): (result, its stderr)."""
    import io

    err = io.StringIO()
    with open(out_path, "w", encoding="utf-8") as out:
        result = backtest(
            path,
            policy if isinstance(policy, Policy) else load(policy),
            dt.datetime.fromisoformat(now) if now else None,
            out,
            err,
            summarize=False,
            part=Part(index, parts),
        )
    return result, err.getvalue()


def backtest_jobs(
    path: str, policy: Policy, policy_path: str, now: dt.datetime | None, jobs: int, out: IO[str], err: IO[str]
) -> dict[str, Any]:
    """policy: loaded from policy_path (the other processes load it again)."""
    with tempfile.TemporaryDirectory(prefix="dealerwatch-backtest-") as folder:
        names = [str(Path(folder) / f"part-{k}.out") for k in range(jobs)]
        moment = now.isoformat() if now else None
        context = multiprocessing.get_context("spawn")  # the engine's threads are not for copying
        with ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context) as pool:
            others = [pool.submit(_part, k, jobs, path, policy_path, moment, names[k]) for k in range(1, jobs)]
            results = [_part(0, jobs, path, policy, moment, names[0])] + [f.result() for f in others]
        opened: collections.Counter[tuple[str, str]] = collections.Counter()
        problems: collections.Counter[str] = collections.Counter()
        dealers = 0
        for name, (result, errors) in zip(names, results, strict=True):
            with open(name, encoding="utf-8") as part:
                for line in part:
                    out.write(line)
            err.write(errors)
            opened.update(result["opened"])
            problems.update(result["problems"])
            dealers += result["dealers"]
    summary(opened, problems, dealers, err)
    return {"opened": dict(opened), "problems": dict(problems), "dealers": dealers}
