"""The quality gate: verify the Soda data contracts in soda_checks/ against the warehouse.

Each contract is verified with Soda Core's Python API, read-only, and the results are summarised
per dataset. Every figure in the summary (outcomes, metric values, thresholds) is Soda's own.

Score of a dataset, and overall (over the checks of every dataset together):

    score = 100 * (passed + 0.5 * warned) / (passed + warned + failed + errored)

A warning counts half, a failed or errored check nothing; a contract that could not run at all
scores 0. The gate passes when no check failed or errored and no contract reported an error.

Each run is appended to `<reports>/data_quality_report.json`, a JSON object {"runs": [...]},
oldest first, keeping the last MAX_RUNS runs; `<reports>/data_quality_report.md` beside it holds
the last run as a short human-readable summary (render_markdown), and render_table gives the
same summary as the plain-text table printed at the end of `recomart quality`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from numbers import Number
from pathlib import Path
from typing import Any

import duckdb

from recomart_core import config, schema
from recomart_core.config import SODA_DIR
from recomart_core.env import PROJECT_ROOT
from recomart_core.warehouse import pending_candidate, publish_candidate

DATASOURCE_FILE = SODA_DIR / "datasource.yml"
WAREHOUSE_ENV = "RECOMART_WAREHOUSE"  # datasource.yml reads the warehouse path from it
REPORT_NAME = "data_quality_report.json"
SUMMARY_NAME = "data_quality_report.md"
RAW_DATASETS = ("raw_interactions", "raw_catalog")  # dlt datasets whose load ids a run records
CATALOG_CONTRACTS = ("raw_products.yml",)  # skipped when there is no catalog
MAX_LOAD_IDS = 10  # the latest load ids recorded per dataset (with the count of all loads)
MAX_RUNS = 100
WARN_WEIGHT = 0.5

OUTCOMES = {
    "PASSED": "passed",
    "WARN": "warned",
    "FAILED": "failed",
    "NOT_EVALUATED": "errored",
    "EXCLUDED": "excluded",
}
COUNTED = ("passed", "warned", "failed", "errored")

log = logging.getLogger("quality")


log = logging.getLogger("quality")


class QualityGateError(RuntimeError):
    """Raised by run() when a contract check failed or could not be evaluated."""


def contract_files(directory: Path = SODA_DIR, cfg: config.Config | None = None) -> list[Path]:
    """Every contract in `directory`: its *.yml files except the data source configuration; with
    `cfg`, only those that apply (no catalog contract when [catalog] source = "none")."""
    contracts = sorted(p for p in directory.glob("*.yml") if p.name != DATASOURCE_FILE.name)
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


def run_quality(
    cfg: config.Config | None = None,
    contracts: list[Path] | None = None,
    warehouse: Path | None = None,
) -> dict:
    """Verify `contracts` (default: all of soda_checks/) against `warehouse` (default: cfg's
    live warehouse; the pipeline passes the candidate that dbt just built), read-only.

    Returns the run's entry, also appended to the report file (and summarised in the markdown
    beside it): run time, warehouse, `load_ids` (per raw dlt dataset: the number of completed
    loads and the latest ids), outcome totals, `overall_score`, `gate_passed` and `datasets`, a
    dict keyed by dataset ("schema.table"; the contract's file name if Soda could not read it)
    holding its counts, `score`, `errors` and every check (name, column, type, outcome, value,
    diagnostic metrics, thresholds). Raises FileNotFoundError when there is no warehouse; with
    no contract at all the gate fails.
    """
    cfg = cfg or config.load()
    warehouse = warehouse or cfg.paths.warehouse
    if not warehouse.exists():
        raise FileNotFoundError(f"No warehouse at {warehouse}: load and transform the data first")
    paths = contracts if contracts is not None else contract_files(cfg=cfg)
    variables = contract_variables(cfg)
    started = time.perf_counter()
    run_at = datetime.now(UTC)
    load_ids = _load_ids(warehouse)
    with _warehouse_env(warehouse), _soda_logs_at(logging.WARNING):
        results = [_verify(Path(path), variables) for path in paths]
    entry = _entry(results, warehouse, run_at, time.perf_counter() - started, load_ids)
    append_report(cfg.paths.reports / REPORT_NAME, entry)
    write_summary(cfg.paths.reports / SUMMARY_NAME, entry)
    _log_summary(entry)
    return entry


def run(cfg: config.Config) -> dict:
    """The gate, whole: verify every contract on the candidate that the transform built (else on
    the live warehouse), print the table, write the reports; when it passes, publish the
    candidate as the live warehouse. Returns the run's entry (see run_quality).

    Raises QualityGateError, naming each failed check, when the gate fails: the live warehouse
    stays as it was and the rejected build stays in the candidate file for a look.
    """
    candidate = pending_candidate(cfg)
    log.info("Verifying the Soda contracts on %s", candidate or cfg.paths.warehouse)
    result = run_quality(cfg, warehouse=candidate)
    print(render_table(result), flush=True)
    if not result["gate_passed"] and candidate:
        log.error("live warehouse left unchanged; the rejected build stays in %s", candidate)
    enforce(result)
    if candidate:
        publish_candidate(cfg)
    return result


def enforce(result: dict) -> None:
    """Raise QualityGateError naming each dataset and check that failed or errored."""
    if result["gate_passed"]:
        return
    lines = [f"Data quality gate failed (score {result['overall_score']}):"]
    for dataset, summary in result["datasets"].items():
        lines += [f"  {dataset}: {problem}" for problem in _problems(summary)]
    raise QualityGateError("\n".join(lines))


def score(counts: dict[str, int]) -> float:
    """100 * (passed + WARN_WEIGHT * warned) / counted checks, rounded to 0.1; 0 when none."""
    total = sum(counts[k] for k in COUNTED)
    if total == 0:
        return 0.0
    return round(100 * (counts["passed"] + WARN_WEIGHT * counts["warned"]) / total, 1)


def append_report(path: Path, entry: dict) -> None:
    """Append `entry` to the {"runs": [...]} report at `path`, keeping the last MAX_RUNS."""
    runs = [*_read_runs(path)[-(MAX_RUNS - 1) :], entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"runs": runs}, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def write_summary(path: Path, entry: dict) -> None:
    """Write the run's markdown summary to `path` (replacing the previous run's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(entry))
    tmp.replace(path)


def render_table(entry: dict) -> str:
    """The run as a plain-text table: one line per dataset, then every check that did not pass."""
    rows = [
        (name, len(d["checks"]), d["passed"], d["warned"], d["failed"], d["errored"], d["score"])
        for name, d in entry["datasets"].items()
    ]
    rows.append(
        ("overall", sum(r[1] for r in rows), entry["passed"], entry["warned"], entry["failed"],
         entry["errored"], entry["overall_score"])
    )  # fmt: skip
    width = max(len(r[0]) for r in rows)
    header = f"{'dataset':<{width}}  checks  passed  warned  failed  errored  score"
    lines = ["", f"Data quality gate {_verdict(entry)} ({entry['run_at']})", header]
    lines.append("-" * len(header))
    for name, *counts, value in rows:
        if name == "overall":
            lines.append("-" * len(header))
        numbers = "".join(f"{n:>{w}}" for n, w in zip(counts, (6, 8, 8, 8, 9), strict=True))
        lines.append(f"{name:<{width}}  {numbers}{value:>7.1f}")
    for dataset, check in _not_passed(entry):
        lines.append(f"  {check['outcome'].upper():<8} {dataset}: {_label(check)} = "
                     f"{_short(check)} ({_limits(check)})")  # fmt: skip
    for dataset, summary in entry["datasets"].items():
        lines += [f"  ERROR    {dataset}: {_first_error_line(e)}" for e in summary["errors"]]
    return "\n".join(lines) + "\n"


def render_markdown(entry: dict) -> str:
    """The run as a short markdown page: verdict, load ids, scores per dataset, checks to read."""
    loads = "; ".join(
        f"{name}: {ids['loads']} loads, latest {ids['latest'][-1] if ids['latest'] else '-'}"
        for name, ids in entry.get("load_ids", {}).items()
    )
    lines = [
        "# Data quality report",
        "",
        f"- Run at: {entry['run_at']} ({entry['duration_seconds']} s)",
        f"- Warehouse checked: `{entry['warehouse']}`",
        f"- Loads: {loads or 'none recorded'}",
        f"- Gate: **{_verdict(entry)}**, overall score **{entry['overall_score']}** / 100",
        "- Score: 100 x (passed + 0.5 x warned) / (passed + warned + failed + errored)",
        "",
        "| dataset | contract | checks | passed | warned | failed | errored | score |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, d in entry["datasets"].items():
        lines.append(
            f"| {name} | `{d['contract']}` | {len(d['checks'])} | {d['passed']} | {d['warned']}"
            f" | {d['failed']} | {d['errored']} | {d['score']} |"
        )
    problems = _not_passed(entry)
    errors = [(n, e) for n, d in entry["datasets"].items() for e in d["errors"]]
    if problems or errors:
        lines += ["", "## Checks that did not pass", ""]
        lines += [
            "| outcome | dataset | check | column | value | thresholds |",
            "|---|---|---|---|--:|---|",
        ]
        lines += [
            f"| {c['outcome']} | {n} | {c['name']} | {c['column'] or ''} | {_short(c)} |"
            f" {_limits(c)} |"
            for n, c in problems
        ]
        lines += [f"| error | {n} | contract | | | {_first_error_line(e)} |" for n, e in errors]
    else:
        lines += ["", "Every check passed."]
    lines += ["", f"Every check, with its metric values: `{REPORT_NAME}` (the last entry).", ""]
    return "\n".join(lines)


def _verdict(entry: dict) -> str:
    return "PASSED" if entry["gate_passed"] else "FAILED"


def _not_passed(entry: dict) -> list[tuple[str, dict]]:
    return [
        (name, check)
        for name, summary in entry["datasets"].items()
        for check in summary["checks"]
        if check["outcome"] != "passed"
    ]


def _limits(check: dict) -> str:
    """The check's thresholds in words, e.g. "fail unless <= 5; warn unless = 0"."""
    words = {
        "must_be": "=", "must_not_be": "!=", "must_be_greater_than": ">",
        "must_be_greater_than_or_equal": ">=", "must_be_less_than": "<",
        "must_be_less_than_or_equal": "<=",
    }  # fmt: skip
    parts = []
    for threshold in (check.get("threshold"), check.get("warn_threshold")):
        if not threshold:
            continue
        rules = [f"{words[k]} {v}" for k, v in threshold.items() if k in words]
        if "must_be_between" in threshold:
            rules.append(f"between {threshold['must_be_between']}")
        parts.append(f"{threshold.get('level', 'fail')} unless {' and '.join(rules) or '?'}")
    return "; ".join(parts)


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


def _verify(contract: Path, variables: dict[str, str] | None = None) -> dict:
    """Verify one contract file; summarise it as a dataset result (errored if Soda raised)."""
    verify_contract_locally = _soda_verify()
    try:
        session = verify_contract_locally(
            data_source_file_path=str(DATASOURCE_FILE),
            contract_file_path=str(contract),
            variables=variables,
        )
    except Exception as exc:  # Soda raises on a contract it cannot parse or connect for
        return _dataset(contract.stem, contract, [], [f"{type(exc).__name__}: {exc}"])
    errors = [str(error) for error in session.get_errors()]
    if not session.contract_verification_results:
        return _dataset(contract.stem, contract, [], errors or ["Soda returned no result"])
    verification = session.contract_verification_results[0]
    checks = [_check(check_result) for check_result in verification.check_results]
    return _dataset(_dataset_name(verification), contract, checks, errors)


@contextmanager
def _warehouse_env(warehouse: Path) -> Iterator[None]:
    """Point datasource.yml's ${env.RECOMART_WAREHOUSE} at `warehouse` for the duration."""
    saved = os.environ.get(WAREHOUSE_ENV)
    os.environ[WAREHOUSE_ENV] = str(warehouse)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(WAREHOUSE_ENV, None)
        else:
            os.environ[WAREHOUSE_ENV] = saved


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


def _soda_verify() -> Any:
    """Soda's verify_contract_locally, imported with telemetry off (Soda reads it at import)."""
    os.environ["SODA_CORE_TELEMETRY_ENABLED"] = "false"
    from soda_core.contracts import verify_contract_locally

    return verify_contract_locally


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


def _dataset(name: str, contract: Path, checks: list[dict], errors: list[str]) -> dict:
    counts = {k: sum(c["outcome"] == k for c in checks) for k in COUNTED}
    return {
        "dataset": name,
        "contract": _display_path(contract),
        **counts,
        "score": score(counts),
        "errors": errors,
        "gate_passed": not (counts["failed"] or counts["errored"] or errors),
        "checks": checks,
    }


def _entry(
    datasets: list[dict], warehouse: Path, run_at: datetime, seconds: float, load_ids: dict
) -> dict:
    totals = {k: sum(d[k] for d in datasets) for k in COUNTED}
    return {
        "run_at": run_at.isoformat(timespec="seconds"),
        "duration_seconds": round(seconds, 2),
        "warehouse": str(warehouse),
        "load_ids": load_ids,
        **totals,
        "overall_score": score(totals),
        "gate_passed": bool(datasets) and all(d["gate_passed"] for d in datasets),
        "datasets": {d["dataset"]: d for d in datasets},
    }


def _log_summary(entry: dict) -> None:
    for dataset, summary in entry["datasets"].items():
        counts = ", ".join(f"{summary[k]} {k}" for k in COUNTED)
        log.info("%s: %s, score %s", dataset, counts, summary["score"])
        for check in summary["checks"]:
            if check["outcome"] == "warned":
                log.warning("%s: %s warned (value %s)", dataset, _label(check), _short(check))
    verdict = "passed" if entry["gate_passed"] else "FAILED"
    log.info("quality gate %s, overall score %s", verdict, entry["overall_score"])


def _problems(summary: dict) -> list[str]:
    problems = [f"contract error: {_first_error_line(error)}" for error in summary["errors"]]
    for check in summary["checks"]:
        if check["outcome"] == "failed":
            problems.append(f"{_label(check)} failed (value {_short(check)})")
        elif check["outcome"] == "errored":
            problems.append(f"{_label(check)} errored (not evaluated)")
    return problems


def _label(check: dict) -> str:
    """The check's name, with its column in brackets when it has one."""
    return f"{check['name']} [{check['column']}]" if check["column"] else check["name"]


def _short(check: dict) -> str:
    """The check's value for a message: floats to 4 significant digits."""
    value = check["value"]
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _first_error_line(error: str) -> str:
    """The database's own error line of a Soda error (which quotes the whole SQL), else line 1."""
    lines = error.strip().splitlines() or [""]
    return next((line for line in lines if " Error: " in line), lines[0])


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _read_runs(path: Path) -> list[dict]:
    """The runs already in the report; none if it is missing or not a {"runs": [...]} object."""
    try:
        runs = json.loads(path.read_text()).get("runs")
    except (OSError, ValueError, AttributeError):
        return []
    return runs if isinstance(runs, list) else []
