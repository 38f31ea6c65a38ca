"""The score of one or more runs' logs (`.data/mutation/<run>.log`), with the mutants that
targets.py lists as equivalent or not reachable here (and log lines) left out, per module:

  python tests/mutation/score.py .data/mutation/before.log [more logs]

Lines are read from the source as it is now: score a run of an older tree only where those
modules have not changed since."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from operators import QUIET
from run import ROOT, _equivalent


def main(paths: list[str]) -> None:
    counts: dict[str, Counter[str]] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            verdict, _, rest = line.partition(" ")
            if verdict not in ("killed", "survived"):
                continue
            where, _definition, operator = rest.split()
            module, number = where.rsplit(":", 1)
            source = (ROOT / module).read_text().splitlines()[int(number) - 1]
            quiet = operator.endswith("RemoveCallStatement") and source.strip().split(".")[0] in QUIET
            outcome = "left out" if quiet or _equivalent(module, operator, source) else verdict
            counts.setdefault(module, Counter())[outcome] += 1
    total: Counter[str] = Counter()
    print(f"{'module':34} {'killed':>6} {'survived':>8} {'left out':>8} {'score':>6}")
    for module, count in counts.items():
        total.update(count)
        run = count["killed"] + count["survived"]
        print(f"{module:34} {count['killed']:6} {count['survived']:8} {count['left out']:8} {count['killed'] / run:6.0%}")
    run = total["killed"] + total["survived"]
    print(f"{'all':34} {total['killed']:6} {total['survived']:8} {total['left out']:8} {total['killed'] / run:6.0%}")


if __name__ == "__main__":
    main(sys.argv[1:])
