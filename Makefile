# censorprobe: see README.md. Every target creates the virtual environments it needs.
PYTHON ?= python3
VENV := .venv
REFVENV := .venv-ref
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REFSTAMP := $(REFVENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv native run test check system lint typecheck pytest bench demo clean help

help:
	@echo "make run        measure the default target list (targets/default.txt)"
	@echo "make test       the whole test suite: ruff, mypy --strict, pytest (lab tests need root)"
	@echo "make system     install the Debian packages the tests need (root), or name them"
	@echo "make check      same as make test"
	@echo "make bench      benchmarks (figures printed, never asserted)"
	@echo "make native     compile the analysis hot path with mypyc (optional; make test/bench do it)"
	@echo "make lab-up / lab-down / demo   the censorship lab (root)"

venv: $(STAMP) $(REFSTAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# OONI's reference parser, kept apart: oonidata pins an old `cryptography`.
$(REFSTAMP):
	$(PYTHON) -m venv $(REFVENV)
	$(REFVENV)/bin/pip install -q --upgrade pip
	$(REFVENV)/bin/pip install -q "oonidata==0.3.0"
	touch $@

# mypyc-compiled analysis modules (probe/native.py): rebuilt only when missing or stale
native: $(STAMP)
	$(BIN)/python -m probe.native ensure

run: $(STAMP)
	$(BIN)/probe run --list targets/default.txt $(RUN_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check probe tests
	$(BIN)/ruff check probe tests
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# the whole suite on the compiled modules, then the unit and conformance tests on the sources
# (what runs where nothing was compiled)
pytest: venv native
	$(BIN)/pytest $(PYTEST_ARGS)
	CENSORPROBE_PURE=1 $(BIN)/pytest -q tests/unit tests/conformance $(PYTEST_ARGS)

# the Debian packages of .ci/packages.txt: installed when root, else one line naming them
system:
	$(PYTHON) -m tests.system ensure

check: system
	$(MAKE) lint typecheck pytest

test: check

bench: venv native
	flock $(LAB_LOCK) $(BIN)/python -m tests.bench $(BENCH_ARGS)

clean:
	-$(PYTHON) -m probe.native clean
	rm -rf $(VENV) $(REFVENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build .import_linter_cache

-include tests/lab/lab.mk

# one lab per machine (fixed namespace names): the demo holds the lab lock, as the tests do
LAB_LOCK ?= /tmp/censorprobe-lab.lock

demo: $(STAMP)
	flock $(LAB_LOCK) sh -c '$(BIN)/python -m tests.lab up --control; \
	$(BIN)/python -m tests.lab.demo; rc=$$?; \
	$(BIN)/python -m tests.lab.demo_apps; rc2=$$?; \
	$(BIN)/python -m tests.lab.demo_path; rc3=$$?; \
	$(BIN)/python -m tests.lab down; [ $$rc -eq 0 ] && [ $$rc2 -eq 0 ] && [ $$rc3 -eq 0 ]'
