# liquidflow — `make demo` runs the main job, `make test` the whole check (lint, types, tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-8)
PYTEST_WORKERS ?= 2

.PHONY: all venv system-deps native lint typecheck test test-fast test-slow coverage demo bench clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned: on this project's machines 2.13.0 is the CPU build on local disk;
	# an unpinned torch would fetch a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

# ARM cross toolchain and QEMU for the C export tests (root + apt); skipped with a note otherwise.
system-deps:
	@bash scripts/install-system-deps.sh

# the C kernels (src/liquidflow/_native) are compiled on first use and cached; build them now.
# Without a compiler the library falls back to its torch kernels (tests of the C path fail in CI).
native: venv
	-$(BIN)/python -m liquidflow._native

lint: venv
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: venv
	$(BIN)/mypy

test: venv system-deps native lint typecheck
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" --durations=15

test-fast: venv
	$(BIN)/python -m pytest -x -q -m "not slow"

test-slow: venv system-deps
	$(BIN)/python -m pytest -m slow

# line coverage of the package by the CI suite (quoted in refactoring notes: it must not drop)
coverage: venv system-deps native
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -m "not slow" --cov=liquidflow --cov-report=term:skip-covered

demo: venv native
	$(BIN)/liquidflow demo

bench: venv native
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache runs
