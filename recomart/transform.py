"""Run dbt (build, docs) on the warehouse with the project's settings."""

from __future__ import annotations

import json
import os

from recomart import config


class DbtError(RuntimeError):
    """dbt reported a failure; its own log names the model or test."""


def dbt_args(command: list[str], cfg: config.Config) -> list[str]:
    """The dbt command line for `command`, pointed at our project, profile, target and vars."""
    dbt_vars = {"feature_half_life_days": cfg.transform["feature_half_life_days"]}
    if cfg.transform.get("as_of"):
        dbt_vars["as_of"] = cfg.transform["as_of"]
    project = str(config.DBT_PROJECT_DIR)
    return [
        *command,
        "--project-dir", project,
        "--profiles-dir", project,
        "--target-path", str(cfg.paths.dbt_target),
        "--log-path", str(cfg.paths.dbt_logs),
        "--vars", json.dumps(dbt_vars),
    ]  # fmt: skip


def run_dbt(command: list[str], cfg: config.Config | None = None) -> None:
    """Run a dbt command in-process against cfg.paths.warehouse; raise DbtError when it fails."""
    from dbt.cli.main import dbtRunner

    cfg = cfg or config.load()
    os.environ["RECOMART_WAREHOUSE"] = str(cfg.paths.warehouse)
    result = dbtRunner().invoke(dbt_args(command, cfg))
    if not result.success:
        detail = f": {result.exception}" if result.exception else " (see the dbt output above)"
        raise DbtError(f"dbt {' '.join(command)} failed{detail}")


def build(cfg: config.Config | None = None) -> None:
    """dbt build: models, snapshots, data tests and unit tests, in dependency order."""
    run_dbt(["build"], cfg)


def docs(cfg: config.Config | None = None) -> None:
    """dbt docs generate: the catalog and lineage site under the dbt target folder."""
    run_dbt(["docs", "generate"], cfg)
