# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint format notebook bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP) $@

## run: create .venv, install, make the database with demo data on first run, print the
## first admin's password once, and start the panel on http://127.0.0.1:8080
run: $(STAMP)
	export CRM_DATA_DIR=$${CRM_DATA_DIR:-$(CURDIR)/var}; \
	$(BIN)/crm init && $(BIN)/crm demo --if-empty && $(BIN)/crm users bootstrap-admin && \
	$(BIN)/crm serve

## test: install what the tests need (Python packages, Chromium, a PostgreSQL server) and run
## the whole suite on SQLite and PostgreSQL
test: $(TEST_STAMP) system-deps
	@url=$$(bash scripts/ensure_postgres.sh | tail -n 1); \
	CRM_TEST_POSTGRES_URL=$${CRM_TEST_POSTGRES_URL:-$$url} $(BIN)/python -m pytest $(PYTEST_ARGS)

system-deps:
	@bash scripts/ensure_system_packages.sh

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## notebook: JupyterLab on the notebooks, against the demo database
notebook: $(TEST_STAMP)
	export CRM_DATA_DIR=$${CRM_DATA_DIR:-$(CURDIR)/var}; \
	$(BIN)/crm init && $(BIN)/crm demo --if-empty && $(BIN)/jupyter lab notebooks

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/core_bench.py
	$(BIN)/python benchmarks/reports_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
