# SageSaver: `make demo` runs the whole pipeline on an embedded AWS simulator,
# `make test` runs lint, types and the test-suite. Both create .venv when missing, from the
# locked versions in requirements/ (hashes required), then SageSaver itself without
# dependencies. `make lock` refreshes the locks; `make test-latest` tries the newest versions
# the ranges in pyproject.toml allow, in a throwaway venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist: one worker per core, each with its own simulator; idle workers take tests
# from busy ones (worksteal). A worker that dies (a segmentation fault in a C extension was
# seen, rarely, in CPython's garbage collector) is replaced, and the test it was running runs
# once more (pytest-rerunfailures; the summary counts it as "rerun"); an ordinary failure is
# never run again: no failure message matches --only-rerun's pattern. Checked by
# tests/test_crash_reruns.py.
WORKERS ?= auto
PYTEST := $(BIN)/pytest -q -n $(WORKERS) --dist worksteal --max-worker-restart=4 --reruns 1 --only-rerun '^a crashed worker only$$'

.PHONY: demo test test-fast test-shifted test-latest test-deep lint typecheck pytest bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python requirements/demo.txt pyproject.toml
	$(BIN)/pip install --quiet --require-hashes -r requirements/demo.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev-installed: $(BIN)/python requirements/dev.txt pyproject.toml
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/sagesaver demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy --strict src

pytest: $(VENV)/.dev-installed
	$(PYTEST)

test: lint typecheck pytest

# The fast lane: no server, no browser, no child process (tests marked `slow` left out).
test-fast: $(VENV)/.dev-installed
	$(PYTEST) -m "not slow"

# The suite again with the clock (this process's and its Python children's) a year ahead:
# a test that depends on today's date fails here (tests/shifted_clock.py).
test-shifted: $(VENV)/.dev-installed
	$(PYTEST) -p no:cacheprovider --shift-clock=365

# The model-based search for wrongful deletions, long and random (make test runs a fixed-seed
# budget of it): tests/pipelines/test_model_based.py.
test-deep: $(VENV)/.dev-installed
	SAGESAVER_DEEP=1 $(BIN)/pytest -q -p no:cacheprovider tests/pipelines/test_model_based.py

# The newest versions pyproject.toml allows, in a throwaway venv, the locks untouched: run it
# to see whether an upstream release breaks SageSaver (or the benchmarks' simulator speed-ups)
# before `make lock` takes it in. Never part of `make test` or CI.
test-latest:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet --upgrade pip; \
	"$$tmp/venv/bin/pip" install --quiet -e '.[dev]'; \
	"$$tmp/venv/bin/pip" list --format=freeze | grep -iE '^(boto3|botocore|moto|pydantic|werkzeug)=='; \
	"$$tmp/venv/bin/pytest" -q -n $(WORKERS) --dist worksteal -p no:cacheprovider tests benchmarks/tests

# Refresh the locks to the newest versions the ranges allow: the dev and demo extras for
# every Python SageSaver supports and every platform (one universal file each), and the Lambda
# package's dependencies for its runtime (shipped in the package data, `deploy package` reads
# it). uv, because its universal resolution writes one lock valid on every platform and
# Python (pip-tools locks only for the machine it runs on), and the Lambda's lock is for
# Linux and Python 3.13 whatever the machine.
LAMBDA := import sagesaver.deploy.package as p; print(
UV_COMPILE := $(BIN)/uv pip compile --quiet --upgrade --generate-hashes --custom-compile-command "make lock"
lock: $(VENV)/.dev-installed
	$(UV_COMPILE) --universal --python-version 3.10 pyproject.toml --extra dev \
		-c requirements/constraints.txt -o requirements/dev.txt
	$(UV_COMPILE) --universal --python-version 3.10 pyproject.toml --extra demo \
		-c requirements/dev.txt -o requirements/demo.txt
	$(BIN)/python -c "$(LAMBDA)*p.REQUIREMENTS, sep='\n')" | $(UV_COMPILE) \
		--python-version $$($(BIN)/python -c "$(LAMBDA)p.PYTHON_VERSION)") \
		--python-platform x86_64-manylinux_2_28 - -o src/sagesaver/data/lambda-requirements.txt

# The benchmarks' simulator speed-ups are checked against moto first, then both benchmarks
# run; a failed target of either fails the whole (scale's exit code kept).
bench: $(VENV)/.dev-installed
	$(BIN)/pytest -q -p no:cacheprovider benchmarks/tests
	$(BIN)/python -m benchmarks.scale; scale=$$?; $(BIN)/python -m benchmarks.agent && exit $$scale

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
