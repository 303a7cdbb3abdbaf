"""Run dbt (build, docs) on the warehouse with the project's settings.

The engine is DuckDB (the warehouse file) unless a function is given `target=SPARK`: then the same
project builds on Apache Spark (dbt-spark, in-process session; profiles.yml's `spark` target),
reading the raw datasets from the lake (dbt_project/lake.py).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import duckdb

from dbt_project import lake
from recomart_core import config, engine
from recomart_core import schema as s
from recomart_core.rulesets import load_rule_set
from recomart_core.warehouse import mart_rows, prepare_candidate, with_warehouse

log = logging.getLogger("transformation")
DBT_TIME = re.compile(r"^\d\d:\d\d:\d\d\s+")  # dbt's own clock; our log line has the time


class DbtError(RuntimeError):
    """dbt reported a failure; its own log names the model or test."""


DUCKDB = "duckdb"  # the warehouse file (profiles.yml's default target, `dev`)
SPARK = "spark"  # Apache Spark through dbt-spark (profiles.yml's `spark` target)
TARGETS = (DUCKDB, SPARK)


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"dbt target must be one of {', '.join(TARGETS)}, got {target!r}")


def dbt_args(
    command: list[str], cfg: config.Config, target: str = DUCKDB, variables: dict | None = None
) -> list[str]:
    """The dbt command line for `command`, pointed at our project, profile, target and vars
    (recomart.toml's, updated with `variables`: e.g. history_as_of, which only tests set).
    For SPARK: `--target spark`, the lake's tables in var `lake`, and the dbt output (manifest,
    logs) in `spark` subfolders of the usual ones, so the two engines' runs do not mix."""
    _check_target(target)
    dbt_vars = {**dbt_variables(cfg), **(variables or {})}
    project = str(config.DBT_PROJECT_DIR)
    target_path, log_path = cfg.paths.dbt_target, cfg.paths.dbt_logs
    target_args: list[str] = []
    if target == SPARK:
        dbt_vars["lake"] = lake.lake_var(cfg.paths.lake)
        target_path, log_path = target_path / SPARK, log_path / SPARK
        target_args = ["--target", SPARK]
    return [
        *command,
        "--project-dir", project,
        "--profiles-dir", project,
        "--target-path", str(target_path),
        "--log-path", str(log_path),
        *target_args,
        "--vars", json.dumps(dbt_vars),
    ]  # fmt: skip


def dbt_variables(cfg: config.Config) -> dict:
    """The dbt vars that carry recomart.toml's settings (dbt_project.yml has their defaults)."""
    settings = cfg.settings
    dbt_vars = {
        "feature_half_life_days": settings.transform.feature_half_life_days,
        "rating_min": settings.ratings.min,
        "rating_max": settings.ratings.max,
        "rating_step": settings.ratings.step,
        "event_types": settings.accepted_events,
        "default_event_type": settings.ingest.interactions.default_event,
        "transaction_lines": settings.ingest.interactions.transaction_lines,
        "returns": settings.ingest.interactions.returns.action,
        "catalog_source": settings.catalog.source,
        "unknown_items": settings.catalog.unknown_item_policy,
        "not_products": settings.catalog.not_products,
        # the rule set's default surface, for the batch recommendations' test (batch_rules)
        "batch_rules": load_rule_set(cfg.paths.home / settings.serve.rules)
        .surface(None)
        .model_dump(mode="json"),
    }
    if settings.transform.as_of:
        dbt_vars["as_of"] = settings.transform.as_of
    return dbt_vars


def dbt_executable() -> str:
    """The dbt installed beside this Python (the project's virtual environment)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent thread ends


@cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, looked up once in the parent (never after fork); else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def ends_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child end (SIGKILL) when this process ends, even by
    `kill -9`, so no dbt is left running on its own and holding the warehouse file; None where
    there is no prctl (the child then outlives a killed parent, as before)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def arm() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent ended before the signal was armed
            os._exit(1)

    return arm


def run_dbt(
    command: list[str], cfg: config.Config, target: str = DUCKDB, variables: dict | None = None
) -> None:
    """Run a dbt command against cfg.paths.warehouse (or, target SPARK, against Spark, whose
    warehouse and metastore are in [paths] spark), with the dbt vars of dbt_args; raise
    DbtError when it fails.

    dbt runs in its own process, as people run it: dbt-duckdb keeps its connection open for the
    life of the process, and the next stage (Soda, read-only) could not open the file beside it.
    On Linux the dbt process ends with ours (ends_with_parent): a killed stage leaves no dbt.
    A Spark run starts its own JVM (dbt-spark's session) and works in the Spark folder, so
    nothing Spark writes lands in the caller's working directory.
    """
    env = {**os.environ, "RECOMART_WAREHOUSE": str(cfg.paths.warehouse)}
    args = [dbt_executable(), *dbt_args(command, cfg, target, variables), "--no-use-colors"]
    cwd = None
    if target == SPARK:
        cwd = cfg.paths.spark
        env.update(engine.spark_environment(cfg))  # creates the folder
    with subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ends_with_parent(),
    ) as proc:
        for line in proc.stdout:  # dbt's own progress lines, into the stage log
            log.info(DBT_TIME.sub("", line.rstrip()))
    if proc.returncode != 0:
        raise DbtError(
            f"dbt {' '.join(command)} exited {proc.returncode}: see the failing model or test above"
        )


def run(cfg: config.Config, variables: dict | None = None) -> None:
    """The transform stage: `dbt build` (staging, cleaning, marts, their history and the tests) in a
    candidate copy of the warehouse (recomart_core.warehouse); the quality gate publishes it.
    `variables`: extra dbt vars (dbt_args), e.g. a test's history_as_of."""
    candidate = prepare_candidate(cfg)
    log.info("dbt build")
    build(with_warehouse(cfg, candidate), variables=variables)
    transaction_lines = cfg.settings.ingest.interactions.transaction_lines
    write_summary(candidate, cfg.paths.reports / SUMMARY_FILE, transaction_lines)


SUMMARY_FILE = "transform.json"  # what dbt built (DVC's transform stage output)
COMBINED_REASON = "combined into one transaction line"  # int_interactions_validated's reason
INTERACTIONS = f"{s.MARTS_SCHEMA}.{s.INTERACTIONS_MART}"
REJECTED = f"{s.MARTS_SCHEMA}.{s.REJECTED_MART}"


def write_summary(candidate: Path, path: Path, transaction_lines: str = "sum") -> dict:
    """What dbt built in `candidate`, written to path as JSON and returned: {"marts": {mart: rows},
    "combined_lines": {"rule": transaction_lines, **combined_lines()}, "repeats":
    repeat_behaviour()}."""
    with duckdb.connect(str(candidate), read_only=True) as con:
        summary = {
            "marts": mart_rows(con),
            "combined_lines": {"rule": transaction_lines, **combined_lines(con)},
            "repeats": repeat_behaviour(con),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def combined_lines(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The lines of one transaction that dbt combined into one event ([ingest.interactions]
    transaction_lines = "sum"), from the marts of `con`: {"lines": every line that took part, the
    kept ones included, "events": the events they made}. 3 lines of one invoice listing a product
    make 1 event: 2 rows rejected as combined, pointing at the 1 kept."""
    combined, events = con.execute(
        f"select count(*), count(distinct combined_into_interaction_key) from {REJECTED}"
        " where rejection_reason = ?",
        [COMBINED_REASON],
    ).fetchone()
    return {"lines": combined + events, "events": events}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def repeat_behaviour(con: duckdb.DuckDBPyConnection) -> dict:
    """The data's repeat behaviour, aggregated in SQL over marts.interactions.is_repeat (dbt's flag:
    a clean interaction with the item strictly before). Returns {"by_event_type": {event type:
    {"events", "repeats", "share"}}, "users", "users_last_event_repeat", "last_event_repeat_share"
    (users with at least 2 clean events; the last event is every event at the user's latest
    event_at, a repeat when any of them is), "purchases", "purchases_after_view",
    "purchase_after_view_share" (a clean view of the same item strictly before the purchase)}.
    Shares are fractions rounded to 4 decimals, None without a denominator."""
    by_type = con.execute(
        f"select event_type, count(*), count(*) filter (where is_repeat) from {INTERACTIONS}"
        " group by event_type order by event_type"
    ).fetchall()
    users, users_repeat = con.execute(
        f"""
        with user_events as (
            select
                user_id,
                is_repeat,
                event_at = max(event_at) over (partition by user_id) as is_last,
                count(*) over (partition by user_id) as user_events
            from {INTERACTIONS}
        ),
        last_events as (
            select user_id, bool_or(is_repeat) as is_repeat
            from user_events
            where is_last and user_events >= 2
            group by user_id
        )
        select count(*), count(*) filter (where is_repeat) from last_events
        """
    ).fetchone()
    purchases, after_view = con.execute(
        f"""
        with first_views as (
            select user_id, item_id, min(event_at) as first_view_at
            from {INTERACTIONS}
            where event_type = $view
            group by user_id, item_id
        )
        select count(*), count(*) filter (where first_views.first_view_at < purchases.event_at)
        from {INTERACTIONS} as purchases
        left join first_views
            on purchases.user_id = first_views.user_id and purchases.item_id = first_views.item_id
        where purchases.event_type = $purchase
        """,
        {"view": s.VIEW, "purchase": s.PURCHASE},
    ).fetchone()
    return {
        "by_event_type": {
            event: {"events": n, "repeats": r, "share": _share(r, n)} for event, n, r in by_type
        },
        "users": users,
        "users_last_event_repeat": users_repeat,
        "last_event_repeat_share": _share(users_repeat, users),
        "purchases": purchases,
        "purchases_after_view": after_view,
        "purchase_after_view_share": _share(after_view, purchases),
    }


# what the pipeline runs: not the unit tests (unit_tests), nor the check of training's batch
# recommendations (tag batch_rules: training runs it, batch_rules_test)
BUILD = ["build", "--exclude-resource-type", "unit_test", "--exclude", "tag:batch_rules"]


def register_lake(cfg: config.Config) -> None:
    """Register the lake's Parquet folders (written by the ingest on engine spark:
    dlt_pipelines/lake_pipeline.py) as Spark's raw tables: the run-operation
    register_lake_sources (macros/lake.sql). The metastore keeps them for later runs; run it again
    after each ingest (a table is created again over its folder, so it sees the new files)."""
    run_dbt(["run-operation", "register_lake_sources"], cfg, SPARK)


def register_tables(cfg: config.Config, tables: dict[str, Path]) -> None:
    """Register Parquet folders the pipeline wrote on Spark ({"schema.table": folder}, e.g. the
    training's batch recommendations) as external tables in dbt's Spark metastore: the
    run-operation register_parquet_tables (macros/lake.sql)."""
    folders = {table: str(Path(folder).resolve()) for table, folder in tables.items()}
    run_dbt(
        ["run-operation", "register_parquet_tables", "--args", json.dumps({"tables": folders})],
        cfg,
        SPARK,
    )


def build(cfg: config.Config, target: str = DUCKDB, variables: dict | None = None) -> None:
    """dbt build: models (the history's versions appended) and data tests, in dependency order,
    with the extra dbt vars `variables` (dbt_args). Unit tests check the SQL against fixed inputs,
    not the data, so they run in the test suite (`unit_tests`), not on every build: the way dbt
    recommends for production runs. Target SPARK builds on Spark from the lake (the feature
    history included), registering the lake's tables first."""
    if target == SPARK:
        register_lake(cfg)
    run_dbt(BUILD, cfg, target, variables)


def batch_rules_test(cfg: config.Config) -> None:
    """`dbt test --select tag:batch_rules`: the batch recommendations obey the rule set's default
    surface (tests/assert_batch_recommendations_obey_rules.sql); DbtError when one does not."""
    run_dbt(["test", "--select", "tag:batch_rules"], cfg)


def unit_tests(cfg: config.Config, target: str = DUCKDB) -> None:
    """dbt's unit tests (`dbt test --select test_type:unit`); the models' parents must exist in
    cfg's warehouse (a built one: dbt reads their column types), or on Spark for SPARK."""
    run_dbt(["test", "--select", "test_type:unit"], cfg, target)


def docs(cfg: config.Config) -> None:
    """dbt docs generate: the catalog and lineage site under the dbt target folder."""
    run_dbt(["docs", "generate"], cfg)
