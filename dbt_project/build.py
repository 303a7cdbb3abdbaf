"""Run dbt (build, docs) on the warehouse with the project's settings."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb

from recomart.core import config
from recomart.core.warehouse import mart_rows, prepare_candidate, with_warehouse

log = logging.getLogger("transformation")
DBT_TIME = re.compile(r"^\d\d:\d\d:\d\d\s+")  # dbt's own clock; our log line has the time


class DbtError(RuntimeError):
    """dbt reported a failure; its own log names the model or test."""


def dbt_args(command: list[str], cfg: config.Config) -> list[str]:
    """The dbt command line for `command`, pointed at our project, profile, target and vars."""
    dbt_vars = dbt_variables(cfg)
    project = str(config.DBT_PROJECT_DIR)
    return [
        *command,
        "--project-dir", project,
        "--profiles-dir", project,
        "--target-path", str(cfg.paths.dbt_target),
        "--log-path", str(cfg.paths.dbt_logs),
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
        "returns": settings.ingest.interactions.returns.action,
        "catalog_source": settings.catalog.source,
        "unknown_items": settings.catalog.unknown_item_policy,
        "not_products": settings.catalog.not_products,
    }
    if settings.transform.as_of:
        dbt_vars["as_of"] = settings.transform.as_of
    return dbt_vars


def dbt_executable() -> str:
    """The dbt installed beside this Python (the project's virtual environment)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def run_dbt(command: list[str], cfg: config.Config | None = None) -> None:
    """Run a dbt command against cfg.paths.warehouse; raise DbtError when it fails.

    dbt runs in its own process, as people run it: dbt-duckdb keeps its connection open for the
    life of the process, and the next stage (Soda, read-only) could not open the file beside it.
    """
    cfg = cfg or config.load()
    env = {**os.environ, "RECOMART_WAREHOUSE": str(cfg.paths.warehouse)}
    args = [dbt_executable(), *dbt_args(command, cfg), "--no-use-colors"]
    with subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:  # dbt's own progress lines, into the stage log
            log.info(DBT_TIME.sub("", line.rstrip()))
    if proc.returncode != 0:
        raise DbtError(
            f"dbt {' '.join(command)} exited {proc.returncode}: see the failing model or test above"
        )


def run(cfg: config.Config) -> None:
    """The transform stage: `dbt build` (staging, cleaning, marts, snapshots and their tests) in a
    candidate copy of the warehouse (recomart.core.warehouse); the quality gate publishes it."""
    candidate = prepare_candidate(cfg)
    log.info("dbt build")
    build(with_warehouse(cfg, candidate))
    write_summary(candidate, cfg.paths.reports / SUMMARY_FILE)


SUMMARY_FILE = "transform.json"  # what dbt built: rows per mart (DVC's transform stage output)


def write_summary(candidate: Path, path: Path) -> dict[str, int]:
    """{mart: rows} of the candidate's marts schema, written to path and returned."""
    with duckdb.connect(str(candidate), read_only=True) as con:
        rows = mart_rows(con)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"marts": rows}, indent=2) + "\n")
    return rows


BUILD = ["build", "--exclude-resource-type", "unit_test"]  # what the pipeline runs


def build(cfg: config.Config | None = None) -> None:
    """dbt build: models, snapshots and data tests, in dependency order. Unit tests check the SQL
    against fixed inputs, not the data, so they run in the test suite (`unit_tests`), not on
    every build: the way dbt recommends for production runs."""
    run_dbt(BUILD, cfg)


def unit_tests(cfg: config.Config | None = None) -> None:
    """dbt's unit tests (`dbt test --select test_type:unit`); the models' parents must exist in
    cfg's warehouse (a built one: dbt reads their column types)."""
    run_dbt(["test", "--select", "test_type:unit"], cfg)


def docs(cfg: config.Config | None = None) -> None:
    """dbt docs generate: the catalog and lineage site under the dbt target folder."""
    run_dbt(["docs", "generate"], cfg)
