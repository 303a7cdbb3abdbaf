"""The quality gate, the stage: verify the Soda data contracts in soda_checks/ against the
warehouse, score and report the run, and publish the candidate that passed.

On either engine (recomart.toml `engine`), with the same contracts, score, report and verdict.
DuckDB: the contracts read the candidate warehouse file that the transform built, and the gate
publishes it as the live warehouse when it passes (a failed build never becomes live). Spark:
dbt-spark wrote its tables in place, so there is no candidate to publish or hold back; the gate
reads those tables through this process's Spark session (soda_checks/spark.py) and its verdict
is what stands between them and everything downstream: a failed gate raises QualityGateError,
the run stops before the export to [paths] features and before training, and the failed build
stays in Spark's warehouse folder (replaced by the next build) for a look.

The parts, one job each: soda_checks.verify invokes Soda v4 (which contracts, their variables,
one read-only verification each), soda_checks.score counts and scores the results (the formula
is there), soda_checks.report keeps the report files and renders the run (markdown, the
plain-text table, a failed gate's lines). Every figure in the summary (outcomes, metric values,
thresholds) is Soda's own.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from recomart_core import config, engine
from recomart_core.warehouse import pending_candidate, publish_candidate
from soda_checks import spark as spark_gate
from soda_checks.report import (
    REPORT_NAME,
    SUMMARY_NAME,
    append_report,
    label,
    problems,
    render_table,
    short,
    write_summary,
)
from soda_checks.score import COUNTED, dataset_summary, run_entry
from soda_checks.verify import (
    SPARK_DATASOURCE_FILE,
    contract_files,
    contract_variables,
    verify_all,
)

RAW_DATASETS = ("raw_interactions", "raw_catalog")  # dlt datasets whose load ids a run records
MAX_LOAD_IDS = 10  # the latest load ids recorded per dataset (with the count of all loads)

log = logging.getLogger("quality")


class QualityGateError(RuntimeError):
    """Raised by run() when a contract check failed or could not be evaluated."""


def run(cfg: config.Config) -> dict:
    """The gate, whole: verify every contract on the candidate that the transform built (else on
    the live warehouse; on Spark, on the tables dbt-spark wrote), print the table, write the
    reports; when it passes, publish the candidate as the live warehouse (on Spark there is
    none: see the module docstring). Returns the run's entry (see run_quality).

    Raises QualityGateError, naming each failed check, when the gate fails: the live warehouse
    stays as it was and the rejected build stays in the candidate file for a look (on Spark, in
    Spark's warehouse folder, where dbt wrote it).
    """
    on_spark = engine.is_spark(cfg)
    candidate = None if on_spark else pending_candidate(cfg)
    where = engine.spark_warehouse(cfg) if on_spark else candidate or cfg.paths.warehouse
    log.info("Verifying the Soda contracts on %s", where)
    result = run_quality(cfg, warehouse=candidate)
    print(render_table(result), flush=True)
    if not result["gate_passed"] and candidate:
        log.error("live warehouse left unchanged; the rejected build stays in %s", candidate)
    if not result["gate_passed"] and on_spark:
        log.error("the rejected Spark build stays in %s; nothing downstream reads it", where)
    enforce(result)
    if candidate:
        publish_candidate(cfg)
    return result


def run_quality(
    cfg: config.Config,
    contracts: list[Path] | None = None,
    warehouse: Path | None = None,
) -> dict:
    """Verify `contracts` (default: all of soda_checks/ that apply to cfg) against `warehouse`
    (default: cfg's live warehouse; the pipeline passes the candidate that dbt just built),
    read-only. With engine = "spark": against the tables dbt-spark built and the lake, in this
    process's Spark session (`warehouse` must then be None; the entry names Spark's warehouse
    folder).

    Returns the run's entry, also appended to the report file (and summarised in the markdown
    beside it): run time, warehouse, `load_ids` (per raw dlt dataset: the number of completed
    loads and the latest ids), outcome totals, `overall_score`, `gate_passed` and `datasets`, a
    dict keyed by dataset ("schema.table"; the contract's file name if Soda could not read it)
    holding its counts, `score`, `errors` and every check (name, column, type, outcome, value,
    diagnostic metrics, thresholds). Raises FileNotFoundError when there is no warehouse; with
    no contract at all the gate fails. On Spark, FileNotFoundError when dbt has built no marts.
    """
    paths = contracts if contracts is not None else contract_files(cfg=cfg)
    variables = contract_variables(cfg)
    if engine.is_spark(cfg):
        if warehouse is not None:
            raise ValueError("the Spark gate reads Spark's tables: it takes no warehouse file")
        started = time.perf_counter()
        run_at = datetime.now(UTC)
        warehouse = engine.spark_warehouse(cfg)
        with spark_gate.contract_session(cfg) as session:
            load_ids = spark_gate.load_ids(session, RAW_DATASETS, MAX_LOAD_IDS)
            verified = verify_all(paths, warehouse, variables, SPARK_DATASOURCE_FILE)
    else:
        warehouse = warehouse or cfg.paths.warehouse
        if not warehouse.exists():
            raise FileNotFoundError(
                f"No warehouse at {warehouse}: load and transform the data first"
            )
        started = time.perf_counter()
        run_at = datetime.now(UTC)
        load_ids = _load_ids(warehouse)
        verified = verify_all(paths, warehouse, variables)
    datasets = [dataset_summary(v) for v in verified]
    entry = run_entry(datasets, warehouse, run_at, time.perf_counter() - started, load_ids)
    append_report(cfg.paths.reports / REPORT_NAME, entry)
    write_summary(cfg.paths.reports / SUMMARY_NAME, entry)
    _log_summary(entry)
    return entry


def enforce(result: dict) -> None:
    """Raise QualityGateError naming each dataset and check that failed or errored."""
    if result["gate_passed"]:
        return
    lines = [f"Data quality gate failed (score {result['overall_score']}):"]
    for dataset, summary in result["datasets"].items():
        lines += [f"  {dataset}: {problem}" for problem in problems(summary)]
    raise QualityGateError("\n".join(lines))


def _load_ids(warehouse: Path) -> dict[str, dict]:
    """Per raw dlt dataset: the number of completed loads and the latest MAX_LOAD_IDS ids."""
    found = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for dataset in RAW_DATASETS:
            try:
                ids = con.execute(
                    f"select load_id from {dataset}._dlt_loads where status = 0 order by load_id"
                ).fetchall()
            except duckdb.CatalogException:  # not loaded yet
                continue
            found[dataset] = {"loads": len(ids), "latest": [i for (i,) in ids[-MAX_LOAD_IDS:]]}
    return found


def _log_summary(entry: dict) -> None:
    for dataset, summary in entry["datasets"].items():
        counts = ", ".join(f"{summary[k]} {k}" for k in COUNTED)
        log.info("%s: %s, score %s", dataset, counts, summary["score"])
        for check in summary["checks"]:
            if check["outcome"] == "warned":
                log.warning("%s: %s warned (value %s)", dataset, label(check), short(check))
    verdict = "passed" if entry["gate_passed"] else "FAILED"
    log.info("quality gate %s, overall score %s", verdict, entry["overall_score"])
