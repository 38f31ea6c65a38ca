"""A year of a generated 2,000-dealer network through `dealerwatch backtest --jobs 2` (#26: goal
<= 10 minutes on this machine): each dealer as bench/rules.py makes them (a sale a day to one of
6 outlets, a visit every 10 days, a monthly target), wall time of the whole command."""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from backtest_jobs import timed_backtest  # noqa: E402
from rules import dealer_history  # noqa: E402


def measure(dealers: int = 2000, days: int = 365, jobs: int | None = None) -> dict[str, float]:
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "year.ndjson"
        count = 0
        with path.open("w", encoding="utf-8") as handle:  # dealer after dealer: the backtest splits by dealer anyway
            for d in range(dealers):
                for event in dealer_history(f"Y-{d}", days, rng):
                    handle.write(json.dumps(event) + "\n")
                    count += 1
        jobs = jobs or os.cpu_count() or 1
        seconds = timed_backtest(path, jobs)
    return {"events": count, "dealers": dealers, "seconds": seconds, "jobs": jobs}


if __name__ == "__main__":
    print(measure())
