"""Invoking Soda v4: which contracts apply, the variables that carry recomart.toml into them, and
verifying each one with Soda Core's Python API against a warehouse, read-only.

Two data sources, one set of contracts: datasource.yml is the DuckDB warehouse file,
datasource_spark.yml the Spark session of this process (the gate registers the tables there,
soda_checks/spark.py). Both are named `recomart`, and Spark's tables have the DuckDB schema and
table names, so every contract's dataset (recomart/<schema>/<table>) and SQL name the same
relations on both engines.

Soda reads two things from the process environment: datasource.yml's ${env.RECOMART_WAREHOUSE}
(the file to check) and its telemetry switch. Both are set only for the duration of a
verify_all call (soda_environment) and restored after it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from numbers import Number
from pathlib import Path
from typing import Any

from recomart_core import config, schema
from recomart_core.config import SODA_DIR

DATASOURCE_FILE = SODA_DIR / "datasource.yml"  # DuckDB: the warehouse file
SPARK_DATASOURCE_FILE = SODA_DIR / "datasource_spark.yml"  # Spark: this process's active session
DATASOURCE_FILES = (DATASOURCE_FILE.name, SPARK_DATASOURCE_FILE.name)  # not contracts
WAREHOUSE_ENV = "RECOMART_WAREHOUSE"  # datasource.yml reads the warehouse path from it
TELEMETRY_ENV = "SODA_CORE_TELEMETRY_ENABLED"  # Soda reads it when it sets up its telemetry
CATALOG_CONTRACTS = ("raw_products.yml",)  # skipped when there is no catalog

OUTCOMES = {
    "PASSED": "passed",
    "WARN": "warned",
    "FAILED": "failed",
    "NOT_EVALUATED": "errored",
    "EXCLUDED": "excluded",
}


@dataclass
class Verified:
    """One contract as Soda verified it: its dataset ("schema.table"; the contract's file stem
    when Soda could not read it), the contract file, every check (name, column, type, path,
    outcome, value, metrics, threshold, warn_threshold) and Soda's errors."""

    dataset: str
    contract: Path
    checks: list[dict]
    errors: list[str]


def contract_files(directory: Path = SODA_DIR, cfg: config.Config | None = None) -> list[Path]:
    """Every contract in `directory`: its *.yml files except the data source configuration; with
    `cfg`, only those that apply (no catalog contract when [catalog] source = "none")."""
    contracts = sorted(p for p in directory.glob("*.yml") if p.name not in DATASOURCE_FILES)
    if cfg is not None and cfg.settings.catalog.source == "none":
        contracts = [p for p in contracts if p.name not in CATALOG_CONTRACTS]
    return contracts


def contract_variables(cfg: config.Config) -> dict[str, str]:
    """The Soda variables that carry recomart.toml's settings into the contracts (each contract
    declares the ones it uses, with the demo's defaults)."""
    settings = cfg.settings
    return {
        "RATING_MIN": repr(settings.ratings.min),
        "RATING_MAX": repr(settings.ratings.max),
        "RATING_STEP": repr(settings.ratings.step),
        # the most two ratings (or two means of ratings) on the scale can differ by
        "RATING_SPAN": repr(settings.ratings.max - settings.ratings.min),
        "EVENT_TYPES": _sql_list(settings.accepted_events),
        "RAW_EVENT_TYPES": _sql_list([*schema.EVENT_TYPES, schema.RETURN_EVENT]),
        "UNKNOWN_ITEMS": settings.catalog.unknown_item_policy,
    }


def _sql_list(values: list[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def verify_all(
    contracts: list[Path],
    warehouse: Path,
    variables: dict[str, str] | None = None,
    data_source: Path = DATASOURCE_FILE,
) -> list[Verified]:
    """Verify each contract file against `warehouse` (read-only) with `variables`, in order,
    through `data_source` (SPARK_DATASOURCE_FILE: the active Spark session, where the tables
    must be registered; `warehouse` is then only named). The process environment is as it was
    when this returns; Soda's per-check console tables stay out of the log (the report holds
    every result)."""
    with soda_environment(warehouse), _soda_logs_at(logging.WARNING):
        return [_verify(Path(path), variables, data_source) for path in contracts]


def _verify(
    contract: Path, variables: dict[str, str] | None = None, data_source: Path = DATASOURCE_FILE
) -> Verified:
    """Verify one contract file through `data_source` (DuckDB's reads the warehouse that
    ${env.RECOMART_WAREHOUSE} names: verify_all sets it); a contract Soda raised on is one
    error and no check."""
    from soda_core.contracts import verify_contract_locally  # telemetry off: soda_environment

    try:
        session = verify_contract_locally(
            data_source_file_path=str(data_source),
            contract_file_path=str(contract),
            variables=variables,
        )
    except Exception as exc:  # Soda raises on a contract it cannot parse or connect for
        return Verified(contract.stem, contract, [], [f"{type(exc).__name__}: {exc}"])
    errors = [str(error) for error in session.get_errors()]
    if not session.contract_verification_results:
        return Verified(contract.stem, contract, [], errors or ["Soda returned no result"])
    verification = session.contract_verification_results[0]
    checks = [_check(check_result) for check_result in verification.check_results]
    return Verified(_dataset_name(verification), contract, checks, errors)


@contextmanager
def soda_environment(warehouse: Path) -> Iterator[None]:
    """For the duration: datasource.yml's ${env.RECOMART_WAREHOUSE} points at `warehouse` and
    Soda's telemetry is off; both variables are restored (or removed) after."""
    values = {WAREHOUSE_ENV: str(warehouse), TELEMETRY_ENV: "false"}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _soda_logs_at(level: int) -> Iterator[None]:
    """Keep Soda's per-check console tables out of the log; the report holds every result."""
    soda_logger = logging.getLogger("soda")
    saved = soda_logger.level
    soda_logger.setLevel(level)
    try:
        yield
    finally:
        soda_logger.setLevel(saved)


def _dataset_name(verification: Any) -> str:
    contract = verification.contract
    return ".".join([*contract.dataset_prefix, contract.dataset_name])


def _check(check_result: Any) -> dict:
    check = check_result.check
    diagnostics = check_result.diagnostic_metric_values or {}
    return {
        "name": check.name,
        "column": check.column_name,
        "type": check.type,
        "path": check.relative_path,
        "outcome": OUTCOMES.get(check_result.outcome.name, "errored"),
        "value": _json_value(check_result.threshold_value),
        "metrics": {name: _json_value(value) for name, value in diagnostics.items()},
        "threshold": _threshold(check.threshold),
        "warn_threshold": _threshold(check.warn_threshold),
    }


def _threshold(threshold: Any) -> dict | None:
    if threshold is None:
        return None
    return {k: _json_value(v) for k, v in asdict(threshold).items() if v is not None}


def _json_value(value: Any) -> Any:
    """A JSON-safe metric value: numbers stay numbers (NaN and infinity become None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Number):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return str(value)  # e.g. a timestamp
