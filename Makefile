# make run  - set up and start the whole stack on the embedded defaults (Ctrl-C stops it)
# make test - set up and run the test suite (real RabbitMQ, a MongoDB-protocol server)
# make test-fast - the tests that need no broker or database (seconds); make lint - ruff and mypy
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint demo chaos bench mutate mutate-ci screenshot browser prometheus clean

$(BIN)/dealerwatch: pyproject.toml
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), "Python 3.11 or 3.12 is needed (durable-rules)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/dealerwatch
	$(BIN)/dealerwatch dev

test: $(BIN)/dealerwatch browser prometheus
	$(BIN)/python -m pytest --durations=25

# no broker, no database: the policy language, the rules core, contracts, keys, the alert, matchers
test-fast: $(BIN)/dealerwatch
	$(BIN)/python -m pytest -q -m "not stack and not slow"

lint: $(BIN)/dealerwatch
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# a generated dealer network posted to the stack `make run` started (in another terminal)
demo: $(BIN)/dealerwatch
	$(BIN)/dealerwatch demo

# the fault suite: services killed, broker and database restarted while history is posted
chaos: $(BIN)/dealerwatch
	$(BIN)/python tests/chaos.py

# Debian's prometheus (and its promtool): the real scraper in the metrics tests, the alerting
# rules checked and tested (#25)
prometheus:
	@command -v promtool >/dev/null || apt-get install -y -qq prometheus >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq prometheus >/dev/null 2>&1) \
		|| echo "prometheus could not be installed (apt-get install prometheus): its tests will be skipped"

# the board's browser tests drive Debian's chromium (skipped, with the reason, without it)
browser:
	@command -v chromium >/dev/null || apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq chromium >/dev/null 2>&1) \
		|| echo "chromium could not be installed (apt-get install chromium): the board's browser tests will be skipped"

# the README's pictures of the board, taken by its browser tests (with fonts for the Chinese views)
screenshot: $(BIN)/dealerwatch browser
	@fc-list :lang=zh | grep -q . || apt-get install -y -qq fonts-noto-cjk >/dev/null 2>&1 \
		|| echo "fonts-noto-cjk could not be installed: Chinese text will show as boxes in the pictures"
	DEALERWATCH_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/notify/test_board.py -k "screenshot or chart or network or policy_view"

# the speed goals (#14) as one table, each against a baseline measured in the same run
bench: $(BIN)/dealerwatch
	$(BIN)/python bench/table.py

# mutation testing of the safety code (tests/mutation/): every mutant must make a test fail.
# By hand, all of it (hours); CI, a fixed subset stopped after MUTATE_BUDGET seconds.
mutate: $(BIN)/dealerwatch
	$(BIN)/python tests/mutation/run.py

MUTATE_BUDGET ?= 240
mutate-ci: $(BIN)/dealerwatch
	$(BIN)/python tests/mutation/run.py --ci --budget $(MUTATE_BUDGET)

clean:
	rm -rf $(VENV) .data .pytest_cache
