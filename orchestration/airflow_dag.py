"""Airflow DAG `recomart_recommendation_pipeline`: the RecoMart pipeline, once a day.

    ingest_interactions ─┐
                         ├─> transform ─> quality_gate ─> train_register_promote ─> summary
    ingest_catalog ──────┘      (dbt)       (Soda v4)      (model, MLflow, recs)

Each task runs the project's own command (`recomart <stage>`, the same as `make <stage>`) from the
project's virtual environment, never its Python code: Airflow lives in its own environment
(`.venv-airflow`; it needs protobuf 7, dbt needs protobuf 6). The tasks map onto the CLI:

- `ingest_interactions`: `recomart ingest --source interactions` (dlt; files loaded before are
  skipped by content hash, rows inserted only when their key is new, so a rerun adds nothing).
- `ingest_catalog`: `recomart ingest --source catalog` (dlt rest_api, scd2 history).
- `transform`: `recomart transform`: dbt build (models, the feature history, every test) in a
  candidate copy of the warehouse.
- `quality_gate`: `recomart quality`: the Soda v4 contracts. The gate passes: the candidate
  becomes the live warehouse. It fails: the task fails at once, without retries (a failed check is a
  verdict on the data, not a transient fault; the command says so with exit code 3, any other
  non-zero exit is a fault and is retried), and every task after it is `upstream_failed`: no
  training, no promotion, no new batch recommendations; the live marts and the champion model stay
  as they were.
- `train_register_promote`: `recomart train`: fits the [train] family, evaluates it against the
  baselines, logs the run to MLflow and registers the model; the alias `champion` moves only if it
  beats the baselines and the current champion, and only then are the batch recommendations for
  every user written to `recommendations.user_recommendations`. The CLI does these in one command
  (one MLflow run), so they are one task here.
- `summary`: `recomart summary`: what the run left (row counts, gate, metrics), read-only.

DuckDB allows one writer per database file at a time, and both ingest tasks, dbt, the gate (it
publishes the candidate) and training (batch recommendations) write the warehouse. Two parallel dlt
loads into one file collide on its lock. The choice: every task that writes the warehouse runs in
the Airflow pool `recomart_warehouse` with ONE slot (`make airflow-init` creates it). The two
ingest tasks have no dependency on each other, so the graph states what is logically parallel, and
the pool serialises exactly what must not overlap, also across DAG runs and other DAGs that use
the same pool; a second writer waits in the queue instead of failing on the lock. Retries alone
(fail on the lock, try again later) would also get there, but by failing by design on every run,
hiding real faults among expected ones and wasting the backoff time. Splitting extraction from
loading so that the HTTP/CSV work runs in parallel and only the load takes the slot would need two
commands per source; the whole ingest takes seconds here, so it is not worth it. `max_active_runs`
is 1 too: runs of different days must not interleave their candidate builds.

Retries: every task (but the gate's verdict) retries `RECOMART_DAG_RETRIES` times (default 3) with
exponential backoff: 1, 2, 4 minutes (`RECOMART_DAG_RETRY_DELAY_SECONDS`, doubled each time, at most
30 minutes), for what does go away: a warehouse held by a person's DuckDB shell, a catalog API
that is down. The catalog load also retries each HTTP request itself (dlt, `.dlt/config.toml`).

Engine: each task runs on the engine recomart.toml's `engine` names (DuckDB by default; "spark":
dbt, the gate and training on Apache Spark, [spark] master, e.g. a cluster's); `RECOMART_DAG_ENGINE`
(duckdb | spark) overrides it for the DAG's tasks (`recomart --engine`). On Spark, dbt's Derby
metastore also takes one process at a time: the same one-slot pool covers it.

Where: `RECOMART_BIN` (default: `<project>/.venv/bin/recomart`); the tasks inherit the environment
of the Airflow process, so `RECOMART_HOME` and `RECOMART_CONFIG` choose the data the DAG works on
(`make airflow-test` points them at a small generated dataset in data/airflow-test/).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RECOMART = os.environ.get("RECOMART_BIN", str(PROJECT_ROOT / ".venv" / "bin" / "recomart"))
# the engine every task runs on, when not recomart.toml's (recomart --engine duckdb | spark)
ENGINE = os.environ.get("RECOMART_DAG_ENGINE")
COMMAND = [RECOMART, *(["--engine", ENGINE] if ENGINE else [])]
WAREHOUSE_POOL = "recomart_warehouse"
RETRY_DELAY_VARIABLE = "RECOMART_DAG_RETRY_DELAY_SECONDS"
# `recomart quality` exits with this code when the gate's verdict is "failed"
# (recomart/cli.py EXIT_GATE_FAILED; tests/test_quality_gate_e2e.py holds them equal).
GATE_FAILED_EXIT = 3
# Nothing leaves the machine: every tool's opt-out, for every task
# (recomart_core/env.py sets them too).
TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "SODA_CORE_TELEMETRY_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "true",
}

default_args = {
    "owner": "recomart",
    "retries": int(os.environ.get("RECOMART_DAG_RETRIES", "3")),
    "retry_delay": timedelta(seconds=float(os.environ.get(RETRY_DELAY_VARIABLE, "60"))),
    "retry_exponential_backoff": 2.0,  # the delay doubles with each retry
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=2),
}


def recomart(task_id: str, *args: str, pool: str | None = WAREHOUSE_POOL) -> BashOperator:
    """A task that runs `recomart <args>`; a non-zero exit fails it (and it retries)."""
    return BashOperator(
        task_id=task_id,
        bash_command=shlex.join([*COMMAND, *args]),
        env=TELEMETRY_OFF,
        append_env=True,  # keep RECOMART_HOME, RECOMART_CONFIG, PATH of the Airflow process
        cwd=str(PROJECT_ROOT),
        **({"pool": pool} if pool else {}),
    )


with DAG(
    dag_id="recomart_recommendation_pipeline",
    description="dlt ingest -> dbt build -> Soda quality gate -> train/register/promote",
    doc_md=__doc__,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,  # each run processes whatever is new; no need to replay missed days
    max_active_runs=1,
    default_args=default_args,
    tags=["recomart"],
) as dag:
    ingest_interactions = recomart("ingest_interactions", "ingest", "--source", "interactions")
    ingest_catalog = recomart("ingest_catalog", "ingest", "--source", "catalog")
    transform = recomart("transform", "transform")

    @task(task_id="quality_gate", pool=WAREHOUSE_POOL)
    def quality_gate() -> None:
        """`recomart quality`; a failed gate fails the task without retries, stopping the rest."""
        command = [*COMMAND, "quality"]
        print("running", shlex.join(command), flush=True)
        code = subprocess.run(
            command, cwd=PROJECT_ROOT, env={**os.environ, **TELEMETRY_OFF}
        ).returncode
        if code == 0:
            return
        if code == GATE_FAILED_EXIT:
            raise AirflowFailException(
                "data quality gate failed: nothing downstream runs; the live warehouse and the"
                " champion model are unchanged. See reports/data_quality_report.md."
            )
        raise AirflowException(f"recomart quality exited {code}")  # a fault: retried

    train = recomart("train_register_promote", "train")
    summary = recomart("summary", "summary", pool=None)  # read-only

    [ingest_interactions, ingest_catalog] >> transform >> quality_gate() >> train >> summary
