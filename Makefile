# censorprobe: see README.md. Every target creates the virtual environments it needs.
PYTHON ?= python3
VENV := .venv
REFVENV := .venv-ref
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REFSTAMP := $(REFVENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv run test check lint typecheck pytest bench demo clean help

help:
	@echo "make run        measure the default target list (targets/default.txt)"
	@echo "make test       the whole test suite: ruff, mypy --strict, pytest (lab tests need root)"
	@echo "make check      same as make test"
	@echo "make bench      benchmarks (figures printed, never asserted)"
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

run: $(STAMP)
	$(BIN)/probe run --list targets/default.txt $(RUN_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check probe tests
	$(BIN)/ruff check probe tests

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest $(PYTEST_ARGS)

check: lint typecheck pytest

test: check

bench: venv
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(REFVENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

-include tests/lab/lab.mk

demo: $(STAMP)
	$(BIN)/python -m tests.lab up --control
	$(BIN)/python -m tests.lab.demo; rc=$$?; \
	$(BIN)/python -m tests.lab.demo_apps; rc2=$$?; \
	$(BIN)/python -m tests.lab down; [ $$rc -eq 0 ] && [ $$rc2 -eq 0 ]
