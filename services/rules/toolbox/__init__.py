"""The rule authors' toolbox (#26): `policy test` (cases.py, runner.py), `policy diff` (diff.py),
both on the same in-memory replay (replay.py) the backtest's core and judge run."""
