# RecoMart: `make demo` runs the whole pipeline on the embedded default data, `make test` tests it.
# `make help` lists every target.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# ENGINE=spark (make demo ENGINE=spark): the pipeline on Apache Spark, recomart.toml [spark];
# empty: recomart.toml's engine (duckdb unless it says otherwise)
ENGINE ?=
RECOMART := $(BIN)/recomart$(if $(ENGINE), --engine $(ENGINE))
SPARK_STAMP := $(VENV)/.spark-stamp
ENGINE_STAMP := $(if $(filter spark,$(ENGINE)),$(SPARK_STAMP),$(STAMP))

# Nothing leaves the machine: every tool's telemetry off, for every target.
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export RUNTIME__DLTHUB_TELEMETRY := false
export SODA_CORE_TELEMETRY_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := true
export RECOMART_WAREHOUSE ?= $(CURDIR)/data/warehouse/recomart.duckdb

.DEFAULT_GOAL := help
.PHONY: help install spark-install demo generate catalog-api ingest transform quality train docs docs-serve \
        summary mlflow-ui bench-demo bench-own-data bench-ease bench-ingest bench-spark bench-transform test test-spark test-fast lint format lock clean clean-all

help: ## list every target
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with pinned versions (constraints.txt)

# Spark needs Java 17, and MLlib's ALS OpenBLAS (without it, a slower Java fallback and a warning):
# Debian packages, installed with apt-get when missing (sudo when not root).
SPARK_DEBS := openjdk-17-jre-headless libopenblas0
$(SPARK_STAMP): $(STAMP)
	@missing=""; command -v java >/dev/null || missing="openjdk-17-jre-headless"; \
	  dpkg -s libopenblas0 >/dev/null 2>&1 || missing="$$missing libopenblas0"; \
	  if [ -n "$$missing" ]; then \
	    sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    echo "apt-get install $$missing"; \
	    $$sudo apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	  fi
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	touch $(SPARK_STAMP)

spark-install: $(SPARK_STAMP) ## the spark extra, Java 17 and OpenBLAS (apt-get) for ENGINE=spark

demo: $(ENGINE_STAMP) ## the whole pipeline on the embedded default data, then a summary
	$(RECOMART) demo

generate: $(STAMP) ## write the default generated data (once; `recomart generate --force` rewrites it)
	$(RECOMART) generate

catalog-api: $(STAMP) ## serve the generated catalog like the Fake Store API on 127.0.0.1:8088
	$(RECOMART) catalog-api

ingest: $(ENGINE_STAMP) ## dlt: interactions CSV + catalog API -> raw datasets in DuckDB
	$(RECOMART) ingest

transform: $(ENGINE_STAMP) ## dbt build: staging, cleaning, feature marts and their history, tests
	$(RECOMART) transform

quality: $(ENGINE_STAMP) ## Soda v4 contracts: quality gate, reports/data_quality_report.json
	$(RECOMART) quality

train: $(ENGINE_STAMP) ## train the [train] family (ALS by default) from the marts, gate vs popularity, MLflow
	$(RECOMART) train

tune: $(STAMP) ## choose model family + parameters on validation folds -> reports/tuning.json
	$(RECOMART) tune

SHARED_DATA ?= ../shared/data
MOVIELENS ?= $(SHARED_DATA)/movielens-100k/u.data
bench-own-data: $(STAMP) ## every examples/ config, unchanged, on the real files of ../shared/data -> reports/
	$(BIN)/python -m recomart.bench.own_data --data $(SHARED_DATA)

bench-movielens: $(STAMP) ## every model family on MovieLens 100K (Microsoft Recommenders protocol) -> reports/
	$(RECOMART) bench-movielens --path $(MOVIELENS)

docs: $(STAMP) ## dbt docs generate (catalog and lineage)
	$(RECOMART) docs

docs-serve: docs ## serve the dbt docs on 127.0.0.1:8080
	cd dbt_project && ../$(BIN)/dbt docs serve --profiles-dir . --host 127.0.0.1 --port 8080

summary: $(STAMP) ## print the summary of the last run
	$(RECOMART) summary

mlflow-ui: $(STAMP) ## MLflow UI on 127.0.0.1:5000 over the project's store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/data/mlflow/mlflow.db --host 127.0.0.1 --port 5000

.PHONY: serve bench-serve
serve: $(STAMP) ## the recommendation API (FastAPI) on the champion, 127.0.0.1:8000, docs at /docs
	$(RECOMART) serve

bench-serve: $(STAMP) ## benchmark: API latency at 200 rps: the champion, then 500K users x 50K items -> reports/
	$(BIN)/python -m recomart.bench.serve --duration 60 --rates 200 --concurrency 1,8,32
	$(BIN)/python -m recomart.bench.serve --synthetic-users 500000 --synthetic-items 50000 \
	  --duration 60 --rates 200 --concurrency 1,8,32

bench-ingest: $(STAMP) ## benchmark: CSV ingestion vs DuckDB read_csv, 1M and 10M rows -> reports/
	$(BIN)/python -m recomart.bench.ingest --sizes 1000000,10000000 --repeats 5

# Airflow: its own environment (it needs protobuf 7, dbt protobuf 6) and its home inside the project.
AIRFLOW_VERSION := 3.3.2
AF_VENV := .venv-airflow
AF_BIN := $(AF_VENV)/bin
AF_STAMP := $(AF_VENV)/.installed-stamp
AF_TEST ?= $(CURDIR)/data/airflow-test
DAG_ID := recomart_recommendation_pipeline
AF_POOL := $(AF_BIN)/airflow pools set recomart_warehouse 1 "DuckDB warehouse: one writer at a time"
# Every airflow command: our DAG folder, no examples, no metrics or traces sent anywhere (Airflow
# 3.3 has no usage-data collection; the switch below is for the versions that had it).
AF_ENV := AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/orchestration AIRFLOW__CORE__LOAD_EXAMPLES=False \
  AIRFLOW__METRICS__STATSD_ON=False AIRFLOW__METRICS__OTEL_ON=False AIRFLOW__TRACES__OTEL_ON=False \
  AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False SCARF_ANALYTICS=false
.PHONY: airflow airflow-init airflow-test eda

$(AF_STAMP): orchestration/constraints-airflow.txt
	test -x $(AF_BIN)/python || $(PYTHON) -m venv $(AF_VENV)
	$(AF_BIN)/python -m pip install --quiet --upgrade pip
	$(AF_BIN)/python -m pip install --quiet -c orchestration/constraints-airflow.txt \
	  apache-airflow==$(AIRFLOW_VERSION) apache-airflow-providers-standard
	touch $(AF_STAMP)

airflow-init: $(STAMP) $(AF_STAMP) ## .venv-airflow, its database in data/airflow, the warehouse pool
	export AIRFLOW_HOME=$(CURDIR)/data/airflow $(AF_ENV) && \
	  $(AF_BIN)/airflow db migrate && $(AF_POOL)

airflow: airflow-init ## Airflow (scheduler, API server, UI) on 127.0.0.1:8090 over the DAG
	export AIRFLOW_HOME=$(CURDIR)/data/airflow $(AF_ENV) AIRFLOW__API__HOST=127.0.0.1 \
	  AIRFLOW__API__PORT=8090 AIRFLOW__API__BASE_URL=http://127.0.0.1:8090 \
	  PATH=$(CURDIR)/$(AF_BIN):$$PATH && airflow standalone

airflow-test: $(STAMP) $(AF_STAMP) ## airflow dags test on small data (data/airflow-test): a run, a gate stop
	rm -rf $(AF_TEST) && mkdir -p $(AF_TEST)/home
	sed -E 's/^n_users = .*/n_users = 400/; s/^n_items = .*/n_items = 150/; s/^n_interactions = .*/n_interactions = 12000/' \
	  recomart.toml > $(AF_TEST)/home/recomart.toml
	start=$$SECONDS && unset SOURCES__CATALOG__BASE_URL && \
	export RECOMART_HOME=$(AF_TEST)/home RECOMART_CONFIG=$(AF_TEST)/home/recomart.toml \
	  AIRFLOW_HOME=$(AF_TEST)/airflow RECOMART_DAG_RETRY_DELAY_SECONDS=5 $(AF_ENV) && \
	$(RECOMART) generate && \
	$(AF_BIN)/airflow db migrate && $(AF_POOL) && \
	$(AF_BIN)/airflow dags test $(DAG_ID) 2026-11-27 && \
	$(AF_BIN)/python orchestration/check_dag_run.py $(DAG_ID) 2026-11-27 success && \
	echo "A new file with 2000 ratings out of range: the next run must stop at the gate." && \
	awk -F, -v OFS=, 'NR == 1 || NR <= 2001 { if (NR > 1) $$3 = 9; print }' \
	  $(AF_TEST)/home/data/generated/interactions/interactions.csv \
	  > $(AF_TEST)/home/data/generated/interactions/bad_ratings.csv && \
	! $(AF_BIN)/airflow dags test $(DAG_ID) 2026-11-28 && \
	$(AF_BIN)/python orchestration/check_dag_run.py $(DAG_ID) 2026-11-28 gate-failed && \
	echo "airflow-test passed in $$((SECONDS - start)) s (environment install not included)"

eda: $(STAMP) ## the EDA notebook on the marts (read-only; run make demo first) -> reports/eda_analysis.html
	$(BIN)/jupyter nbconvert --to html --execute notebooks/eda_analysis.ipynb \
	  --output-dir "$${RECOMART_HOME:-$(CURDIR)}/reports"

BENCH_DEMO_SIZES ?= 100k,1m,10m,catalog-file,catalog-rest
bench-demo: $(STAMP) ## benchmark: the whole pipeline at 100K, 1M, 10M rows and a 1M catalog -> reports/
	$(BIN)/python -m recomart.bench.demo --sizes $(BENCH_DEMO_SIZES) --repeats 3 --repeats-large 1

bench-ease: $(STAMP) ## benchmark: EASE's Cholesky inverse (float64, float32) vs np.linalg.inv -> reports/
	$(BIN)/python -m recomart.bench.ease --data $(SHARED_DATA)

bench-spark: $(SPARK_STAMP) ## benchmark: the pipeline on DuckDB and on Spark per stage, 1M and 10M -> reports/
	$(BIN)/python -m recomart.bench.spark --sizes 1m,10m

bench-transform: $(STAMP) ## benchmark: dbt build vs the same SQL in DuckDB, 100K/1M/10M -> reports/
	$(BIN)/python -m recomart.bench.transform --sizes 100000,1000000,10000000 --repeats 3

# The Spark tests (marker spark) need the spark extra and Java; `make test` leaves them out. This
# target runs the whole pipeline on Spark (what CI runs); `pytest -m spark` runs every Spark test
# (the transform, the gate and the training apart too: about an hour on 2 cores).
test-spark: $(SPARK_STAMP) ## the whole pipeline on Spark local[2] vs DuckDB: a digest per mart and history table, twice
	$(BIN)/python -m pytest tests/test_spark_pipeline.py --durations=0

# Two tiers: the fast one (pure logic, single stages on small files; two workers) and the
# end-to-end one (marked e2e: whole pipelines through dbt, Soda and MLflow, in child processes).
test-fast: $(STAMP) ## the fast tier: everything but the end-to-end tests (under a minute)
	$(BIN)/python -m pytest -m "not e2e" -n 2

test: test-fast ## both tiers: the fast one, then the end-to-end one (what CI runs)
	$(BIN)/python -m pytest -m "e2e and not spark"

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
