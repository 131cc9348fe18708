# SageSaver: `make demo` runs the whole pipeline on an embedded AWS simulator,
# `make test` runs lint, types and the test-suite. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast test-shifted lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.dev-installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/sagesaver demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests $(wildcard benchmarks)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks)
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy --strict src

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest -q

test: lint typecheck pytest

# The fast lane: no server, no browser, no child process (under 30 s).
test-fast: $(VENV)/.dev-installed
	$(BIN)/pytest -q -m "not slow"

# The suite again with the clock (this process's and its Python children's) a year ahead:
# a test that depends on today's date fails here (tests/shifted_clock.py).
test-shifted: $(VENV)/.dev-installed
	$(BIN)/pytest -q -p no:cacheprovider --shift-clock=365

# Both benchmarks run; a failed target of either fails the whole (scale's exit code kept).
bench: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.scale; scale=$$?; $(BIN)/python -m benchmarks.agent && exit $$scale

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
