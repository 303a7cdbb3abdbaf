# RecoMart: `make demo` runs the whole pipeline on the embedded default data, `make test` tests it.
# `make help` lists every target.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RECOMART := $(BIN)/recomart

# Nothing leaves the machine: every tool's telemetry off, for every target.
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export RUNTIME__DLTHUB_TELEMETRY := false
export SODA_CORE_TELEMETRY_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export RECOMART_WAREHOUSE ?= $(CURDIR)/data/warehouse/recomart.duckdb

.DEFAULT_GOAL := help
.PHONY: help install demo generate catalog-api ingest transform quality train docs docs-serve \
        summary mlflow-ui bench-ingest test lint format lock clean clean-all

help: ## list every target
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with pinned versions (constraints.txt)

demo: $(STAMP) ## the whole pipeline on the embedded default data, then a summary
	$(RECOMART) demo

generate: $(STAMP) ## write the default generated data (once; `recomart generate --force` rewrites it)
	$(RECOMART) generate

catalog-api: $(STAMP) ## serve the generated catalog like the Fake Store API on 127.0.0.1:8088
	$(RECOMART) catalog-api

ingest: $(STAMP) ## dlt: interactions CSV + catalog API -> raw datasets in DuckDB
	$(RECOMART) ingest

transform: $(STAMP) ## dbt build: staging, cleaning, feature marts, snapshots, tests
	$(RECOMART) transform

quality: $(STAMP) ## Soda v4 contracts: quality gate, reports/data_quality_report.json
	$(RECOMART) quality

train: $(STAMP) ## train ALS from the marts, evaluate vs popularity, log to MLflow
	$(RECOMART) train

docs: $(STAMP) ## dbt docs generate (catalog and lineage)
	$(RECOMART) docs

docs-serve: docs ## serve the dbt docs on 127.0.0.1:8080
	cd dbt_project && ../$(BIN)/dbt docs serve --profiles-dir . --host 127.0.0.1 --port 8080

summary: $(STAMP) ## print the summary of the last run
	$(RECOMART) summary

mlflow-ui: $(STAMP) ## MLflow UI on 127.0.0.1:5000 over the project's store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/data/mlflow/mlflow.db --host 127.0.0.1 --port 5000

bench-ingest: $(STAMP) ## benchmark: CSV ingestion vs DuckDB read_csv, 1M and 10M rows -> reports/
	$(BIN)/python -m recomart.bench.ingest --sizes 1000000,10000000 --repeats 3

test: $(STAMP) ## the test suite (what CI runs)
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff (Python) and sqlfluff (dbt SQL)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint dbt_project

format: $(STAMP) ## ruff fix and format, sqlfluff fix
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/sqlfluff fix dbt_project

lock: ## re-pin constraints.txt from a fresh resolve of pyproject.toml
	rm -rf /tmp/recomart-lock && $(PYTHON) -m venv /tmp/recomart-lock
	/tmp/recomart-lock/bin/pip install --quiet '.[dev]'
	/tmp/recomart-lock/bin/pip freeze --exclude recomart | grep -v '^-e' > constraints.txt

clean: ## remove generated data, warehouse, dbt target, MLflow store, logs, reports
	rm -rf data logs reports dbt_project/target dbt_project/logs

clean-all: clean ## also remove the virtual environment
	rm -rf $(VENV)
