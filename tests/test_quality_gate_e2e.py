"""The quality gate on real runs: generated data with one defect class pushed past its threshold,
loaded by the real ingest stage and verified by the real contracts; a clean run through dbt that
passes every check; a failed gate that stops `recomart demo` before training and leaves the live
marts and the registered model as they were; and Soda's own CLI over the e2e fixture's warehouse.

Each run has its own home; the two runs through dbt go on in the background while the defect
homes are ingested.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
from conftest import config_for, not_passed, small_config

from recomart import pipeline
from recomart.cli import EXIT_GATE_FAILED
from recomart.demo import datagen
from recomart_core.config import SODA_DIR
from recomart_core.env import PROJECT_ROOT
from soda_checks import gate as quality

pytestmark = pytest.mark.e2e

RAW_CONTRACTS = [SODA_DIR / "raw_interactions.yml", SODA_DIR / "raw_products.yml"]
RAW = "raw_interactions.interactions"
CATALOG = "raw_catalog.products"
PAST = 0.08  # share of defective rows: past the 5 % at which a raw defect fails the gate

# defect class -> (the dataset, the one check that must fail, its column)
DEFECTS = {
    datagen.DUPLICATE: (RAW, "Few duplicate rows", None),
    datagen.MISSING_RATING: (RAW, "Few missing ratings", None),
    datagen.RATING_OUT_OF_RANGE: (RAW, "Few ratings off the scale", "rating"),
    datagen.UNKNOWN_ITEM: (CATALOG, "Few unknown items", None),  # checked beside the catalog
    datagen.FUTURE_TIMESTAMP: (RAW, "Few events in the future", "timestamp"),
    datagen.BAD_TIMESTAMP: (RAW, "Few unreadable rows", None),
}
# a second file without the timestamp column, a required one (a targeted edit)
MISSING_COLUMN = "missing_column"


def _env(home: Path, cfg_file: Path) -> dict[str, str]:
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(cfg_file)}
    env.pop("SOURCES__CATALOG__BASE_URL", None)
    return env


def _stages(home: Path, cfg_file: Path, *stages: str) -> list[subprocess.CompletedProcess]:
    """Run `recomart <stage>` for each stage in turn; stop after the first that fails."""
    done = []
    for name in stages:
        proc = subprocess.run(
            [sys.executable, "-m", "recomart.cli", name],
            env=_env(home, cfg_file), capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        done.append(proc)
        if proc.returncode != 0:
            break
    return done


def _generate(home: Path, defect_rate: float, shares: dict | None = None) -> tuple[Path, Path]:
    """A small home with generated data (the configured seed and sizes)."""
    cfg_file = small_config(home)
    cfg = config_for(home, cfg_file)
    params = {**cfg.generator, "defect_rate": defect_rate, "defect_shares": shares}
    datagen.generate(cfg.paths.generated, **params)
    return cfg_file, cfg.paths.generated / datagen.INTERACTIONS_FILE


def _clean_rows(csv_path: Path, manifest: dict, n: int) -> list[dict]:
    bad = {line for d in manifest["defects"].values() for line in d["lines"]}
    with csv_path.open() as fh:
        rows = [r for line, r in enumerate(csv.DictReader(fh), start=2) if line not in bad]
    return rows[:n]


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("defect", DEFECTS)
def test_defect_past_its_threshold_fails_exactly_its_check(runs: dict, defect: str) -> None:
    dataset, name, column = DEFECTS[defect]
    run = runs[defect]
    assert run["ingest_error"] is None

    result = run["result"]

    assert not_passed(result) == [(dataset, name, column, "failed")]
    check = next(c for c in result["datasets"][dataset]["checks"] if c["name"] == name)
    assert 5 < check["value"] <= 100 * PAST + 0.1  # a percent of the rows, past 5 %
    with pytest.raises(quality.QualityGateError, match=f"{dataset}: {name}"):
        quality.enforce(result)


def test_file_without_a_required_column_fails_its_check(runs: dict) -> None:
    run = runs[MISSING_COLUMN]
    # the ingest stage reports the file (the command exits 1) and loads the others
    assert "missing required column(s) timestamp" in run["ingest_error"]

    result = run["result"]

    assert not_passed(result) == [(RAW, "No file lacks a required column", None, "failed")]
    with pytest.raises(quality.QualityGateError, match="No file lacks a required column"):
        quality.enforce(result)


def _table_digests(warehouse: Path, schemas: tuple[str, ...]) -> dict[str, tuple]:
    """(rows, order-independent hash of the rows) of every table in `schemas`."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema in (select unnest($schemas)) and table_type = 'BASE TABLE'",
            {"schemas": list(schemas)},
        ).fetchall()
        return {
            t: con.execute(f"select count(*), bit_xor(hash(x)) from {t} as x").fetchone()
            for (t,) in tables
        }


def _file_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _defect_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Per defect class, and the missing column: a home with the defect, to ingest."""
    jobs = {}
    for name in DEFECTS:
        home = tmp_path_factory.mktemp(f"defect_{name}")
        jobs[name] = (home, _generate(home, PAST, {name: 1})[0])
    home = tmp_path_factory.mktemp(MISSING_COLUMN)
    cfg_file, csv_path = _generate(home, 0.0)
    manifest = json.loads((csv_path.parent.parent / datagen.MANIFEST_FILE).read_text())
    columns = [c for c in csv_path.read_text().splitlines()[0].split(",") if c != "timestamp"]
    _write_csv(csv_path.with_name("late_export.csv"), _clean_rows(csv_path, manifest, 50), columns)
    jobs[MISSING_COLUMN] = (home, cfg_file)
    return jobs


def _gate_job(tmp_path_factory: pytest.TempPathFactory, pipeline_run: dict) -> tuple[tuple, dict]:
    """A copy of the e2e home (trained, registered) where a file with 8 % out-of-range ratings
    arrived, to run `recomart demo` on; and what its marts and model were before."""
    home = tmp_path_factory.mktemp("gate_run") / "home"
    shutil.copytree(pipeline_run["home"], home)
    cfg_file = home / "recomart.toml"
    cfg = config_for(home, cfg_file)
    csv_path = cfg.paths.generated / datagen.INTERACTIONS_FILE
    rows = _clean_rows(csv_path, pipeline_run["manifest"], 1000)  # 1000 / ~13000 rows: 7.7 %
    for row in rows:  # new users, so the rows are new events, each with an impossible rating
        row.update(user_id=str(int(row["user_id"]) + 100_000), rating="9")
    _write_csv(csv_path.with_name("late_export.csv"), rows, list(rows[0]))
    before = {
        "marts": _table_digests(cfg.paths.warehouse, ("marts", "history")),
        "mlflow": _file_digests(cfg.paths.mlflow),
        "models": _file_digests(cfg.paths.models),
        "train_metrics": (cfg.paths.reports / "train_metrics.json").read_bytes(),
    }
    return (home, cfg_file, "demo"), {"cfg": cfg, "before": before}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, pipeline_run: dict) -> dict[str, dict]:
    """Every run of this module: the defect homes (ingest, then the raw contracts), a clean run
    (no defect) through dbt and the gate, and the failing gate run."""
    jobs = _defect_jobs(tmp_path_factory)
    clean_home = tmp_path_factory.mktemp("clean_run")
    clean_cfg_file = _generate(clean_home, 0.0)[0]
    jobs["clean"] = (clean_home, clean_cfg_file, "ingest", "transform", "quality")
    jobs["gate"], gate = _gate_job(tmp_path_factory, pipeline_run)
    # the two runs through dbt as commands in the background; meanwhile the defect homes are
    # ingested here, in this process (the same stage function, without a new interpreter each)
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(_stages, *jobs[name]) for name in ("clean", "gate")}
        results = {}
        for name in (*DEFECTS, MISSING_COLUMN):
            cfg = config_for(*jobs[name][:2])
            try:
                pipeline.ingest(cfg)
                error = None
            except pipeline.IngestError as exc:  # a file not loaded; the others were
                error = str(exc)
            result = quality.run_quality(cfg, contracts=RAW_CONTRACTS)
            results[name] = {"ingest_error": error, "result": result}
        procs = {name: future.result() for name, future in futures.items()}

    clean_cfg = config_for(clean_home, clean_cfg_file)
    report = json.loads((clean_cfg.paths.reports / quality.REPORT_NAME).read_text())
    results["clean"] = {"procs": procs["clean"], "cfg": clean_cfg, "result": report["runs"][-1]}
    results["gate"] = {"proc": procs["gate"][-1], **gate}
    return results


def test_clean_run_passes_every_check_and_publishes(runs: dict) -> None:
    run = runs["clean"]
    assert [p.returncode for p in run["procs"]] == [0, 0, 0], run["procs"][-1].stderr[-3000:]
    result = run["result"]

    assert result["gate_passed"] is True
    assert not_passed(result) == []
    assert result["overall_score"] == 100.0
    assert {"raw_interactions.interactions", "marts.interactions"} <= set(result["datasets"])
    assert set(result["load_ids"]) == {"raw_interactions", "raw_catalog"}
    # the table printed at the end of `recomart quality`, and the markdown beside the JSON
    assert "Data quality gate PASSED" in run["procs"][-1].stdout
    assert "overall" in run["procs"][-1].stdout
    summary = (run["cfg"].paths.reports / quality.SUMMARY_NAME).read_text()
    assert "Gate: **PASSED**, overall score **100.0** / 100" in summary
    # the verified candidate became the live warehouse
    live = run["cfg"].paths.warehouse
    assert not live.with_name("recomart.candidate.duckdb").exists()
    assert _table_digests(live, ("marts",))["marts.interactions"][0] > 0


def test_failed_gate_stops_the_run_and_keeps_marts_and_model(runs: dict) -> None:
    run = runs["gate"]
    proc, cfg, before = run["proc"], run["cfg"], run["before"]

    assert proc.returncode == EXIT_GATE_FAILED  # a verdict, told apart from a fault (exit 1)
    assert f"{RAW}: Few ratings off the scale [rating] failed" in proc.stderr
    assert "Data quality gate FAILED" in proc.stdout
    assert "training" not in {line.split(" - ")[1] for line in proc.stderr.splitlines()
                              if line.count(" - ") >= 3}  # fmt: skip
    # the live warehouse still serves the marts and history of the last verified build
    assert _table_digests(cfg.paths.warehouse, ("marts", "history")) == before["marts"]
    # and the model: registry, artifacts and metrics untouched
    assert _file_digests(cfg.paths.mlflow) == before["mlflow"]
    assert _file_digests(cfg.paths.models) == before["models"]
    assert (cfg.paths.reports / "train_metrics.json").read_bytes() == before["train_metrics"]
    # the rejected build stays beside it for inspection, with the new rows in it
    candidate = cfg.paths.warehouse.with_name("recomart.candidate.duckdb")
    with duckdb.connect(str(candidate), read_only=True) as con:
        bad = con.execute(
            "select count(*) from marts.rejected_interactions"
            " where rejection_reason = 'rating out of range'"
        ).fetchone()[0]
    assert bad >= 1000


def test_airflow_reads_the_gate_verdict_from_the_exit_code() -> None:
    """The DAG runs in Airflow's own environment, so it states the code itself: the same one."""
    dag = ast.parse((PROJECT_ROOT / "orchestration" / "airflow_dag.py").read_text())
    assigns = [node for node in ast.walk(dag) if isinstance(node, ast.Assign)]
    codes = [node.value.value for node in assigns
             if [getattr(t, "id", None) for t in node.targets] == ["GATE_FAILED_EXIT"]]  # fmt: skip
    assert codes == [EXIT_GATE_FAILED] == [3]


@pytest.mark.parametrize("contract", quality.contract_files(), ids=lambda p: p.stem)
def test_soda_cli_verifies_the_contracts_of_the_e2e_run(pipeline_run: dict, contract: Path) -> None:
    """What CI runs with Soda's own CLI: every contract against the e2e pipeline's warehouse.

    Exit 0 is all passed, 2 warnings only; the raw interactions of the fixture carry 1 % of
    defects, so the raw contracts warn. 1 (a failed check) or 3 (an error) fail the test."""
    env = {
        **os.environ,
        "SODA_CORE_TELEMETRY_ENABLED": "false",
        "RECOMART_WAREHOUSE": str(pipeline_run["cfg"].paths.warehouse),
    }
    soda = Path(sys.executable).with_name("soda")
    command = [str(soda), "contract", "verify", "-ds", "soda_checks/datasource.yml", "-c"]

    proc = subprocess.run(
        [*command, str(contract.relative_to(PROJECT_ROOT))],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    # 1 % of the fixture's rows name an item the catalog lacks: raw_products warns too
    expected = 2 if contract.stem in ("raw_interactions", "raw_products") else 0
    assert proc.returncode == expected, proc.stdout[-3000:] + proc.stderr[-3000:]
