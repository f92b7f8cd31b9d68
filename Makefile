# ModalChorus developer entry points. `make run` and `make test` are the whole set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_WORKSPACE ?= workspaces/demo
export MODALCHORUS_DATA_DIR ?= $(abspath ../shared/datasets)

# The web UI (TypeScript + Vite) is built into the Python package, which serves and ships it.
WEB_DIST := src/modalchorus/server/static/index.html
WEB_MODULES := web/node_modules/.package-lock.json
WEB_SOURCES := web/index.html web/docs.html web/vite.config.ts web/tsconfig.json $(shell find web/src -type f 2>/dev/null)

.PHONY: install system-deps run test bench lint clean

install: system-deps $(STAMP) $(WEB_DIST)

# Debian's chromium for the browser tests (apt-get, as root, only when missing); checks Node.
system-deps:
	sh scripts/install_system_deps.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

$(WEB_MODULES): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error

$(WEB_DIST): $(WEB_MODULES) $(WEB_SOURCES)
	cd web && npm run build

run: install
	$(BIN)/modalchorus demo --workspace $(DEMO_WORKSPACE)

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/bench_encoders.py
	$(BIN)/python benchmarks/bench_projection.py
	$(BIN)/python benchmarks/bench_alignment.py
	$(BIN)/python benchmarks/bench_ui.py

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache web/node_modules src/modalchorus/server/static
