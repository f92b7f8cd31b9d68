# ModalChorus developer entry points. `make run` and `make test` are the whole set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_WORKSPACE ?= workspaces/demo
export MODALCHORUS_DATA_DIR ?= $(abspath ../shared/datasets)

.PHONY: install run test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

run: install
	$(BIN)/modalchorus demo --workspace $(DEMO_WORKSPACE)

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/bench_encoders.py
	$(BIN)/python benchmarks/bench_projection.py

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
