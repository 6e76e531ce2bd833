# cnnlab — the README's commands. `make demo` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Real data for tests and benchmarks: ../shared/data when it exists, unless set by the caller.
CNNLAB_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export CNNLAB_DATA_DIR
PYTEST_ARGS ?=

.PHONY: venv demo test bench lint clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changes (the stamp is newer otherwise).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cnnlab demo

# One worker a core (pytest-xdist), a test file on one worker (module fixtures such as the demo run once).
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
