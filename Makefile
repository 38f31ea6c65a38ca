# make run  - set up and start the whole stack on the embedded defaults (Ctrl-C stops it)
# make test - set up and run the test suite (real RabbitMQ, a MongoDB-protocol server)
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean

$(BIN)/dealerwatch: pyproject.toml
	$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), "Python 3.11 or 3.12 is needed (durable-rules)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/dealerwatch
	$(BIN)/dealerwatch dev

test: $(BIN)/dealerwatch
	$(BIN)/python -m pytest

bench: $(BIN)/dealerwatch
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/rules.py

clean:
	rm -rf $(VENV) .data .pytest_cache
