"""`dealerwatch backtest --jobs 2` against `--jobs 1` on the same generated history (#26): the
speed-up of spreading dealers over the cores, measured in wall time in the same run."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from histories import history  # noqa: E402


def timed_backtest(path: Path, jobs: int) -> float:
    """Wall seconds of the whole command, output thrown away."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "services.cli", "backtest", str(path), "--jobs", str(jobs)]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(dealers: int = 200, days: int = 120) -> dict[str, float]:
    events = history(dt.datetime(2026, 6, 30, tzinfo=dt.UTC), dealers=dealers, days=days)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.ndjson"
        path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
        seconds = {jobs: timed_backtest(path, jobs) for jobs in (1, 2)}
    return {"events": len(events), "one": seconds[1], "two": seconds[2], "speedup": seconds[1] / seconds[2]}


if __name__ == "__main__":
    print(measure())
