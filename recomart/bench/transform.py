"""`make bench-transform`: `dbt build` wall time beside the same model SQL run directly in DuckDB.

For each size the interactions are generated and ingested once (the project's own stages), and the
raw warehouse is kept aside. Then, repeated on a fresh copy of it each time: `dbt build` as the
pipeline runs it (models, the feature history, data tests), `dbt run` (models only), and the
models' SQL, from dbt's run_results.json, executed in the same order by DuckDB alone
(`create table/view ... as`).
The difference is dbt's overhead: start-up, parsing, tests, introspection. Medians go to
reports/bench_transform.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dbt_project import build as transform
from recomart.demo import datagen
from recomart_core import config

SIZES = (100_000, 1_000_000, 10_000_000)


def _bench_config(base: config.Config, home: Path) -> config.Config:
    paths = dataclasses.replace(
        base.paths,
        home=home,
        generated=home / "generated",
        interactions_glob=str(home / "generated" / "interactions" / "*.csv"),
        warehouse=home / "warehouse" / "recomart.duckdb",
        dlt_pipelines=home / "dlt",
        dbt_target=home / "dbt_target",
        dbt_logs=home / "dbt_logs",
        logs=home / "logs",
    )
    return dataclasses.replace(base, paths=paths)


def _fresh_copy(raw: Path, cfg: config.Config) -> None:
    cfg.paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw, cfg.paths.warehouse)


def _timed_dbt(command: list[str], raw: Path, cfg: config.Config) -> float:
    _fresh_copy(raw, cfg)
    started = time.perf_counter()
    transform.run_dbt(command, cfg)
    return time.perf_counter() - started


def _compiled_models(cfg: config.Config) -> list[tuple[str, str, str]]:
    """(relation, materialisation, compiled SQL) of every model, in dbt's execution order."""
    target = cfg.paths.dbt_target
    manifest = json.loads((target / "manifest.json").read_text())["nodes"]
    results = json.loads((target / "run_results.json").read_text())["results"]
    return [
        (r["relation_name"], manifest[r["unique_id"]]["config"]["materialized"], r["compiled_code"])
        for r in results
        if r["unique_id"].startswith("model.")
    ]


def _timed_direct(models: list[tuple[str, str, str]], raw: Path, cfg: config.Config) -> float:
    _fresh_copy(raw, cfg)
    schemas = {relation.rsplit(".", 1)[0] for relation, _, _ in models}
    started = time.perf_counter()
    with duckdb.connect(str(cfg.paths.warehouse)) as con:
        con.execute("set TimeZone = 'UTC'").fetchall()
        for schema in schemas:
            con.execute(f"create schema if not exists {schema}").fetchall()
        for relation, materialized, sql in models:
            kind = "view" if materialized == "view" else "table"
            con.execute(f"create or replace {kind} {relation} as {sql}").fetchall()
    return time.perf_counter() - started


def measure(rows: int, repeats: int, work: Path, base: config.Config) -> dict:
    """Generate and ingest `rows` interactions, then time dbt build, dbt run and direct SQL."""
    from recomart import pipeline

    home = work / f"rows_{rows}"
    shutil.rmtree(home, ignore_errors=True)
    cfg = _bench_config(base, home)
    gen = {**base.generator, "n_interactions": rows, "n_users": max(5_000, rows // 50)}
    datagen.generate(cfg.paths.generated, **gen)
    pipeline.ingest(cfg)
    raw = home / "raw.duckdb"
    shutil.copyfile(cfg.paths.warehouse, raw)
    build, run, direct = [], [], []
    for _ in range(repeats):  # interleaved, so drift hits all three alike
        build.append(_timed_dbt(transform.BUILD, raw, cfg))
        run.append(_timed_dbt(["run"], raw, cfg))
        direct.append(_timed_direct(_compiled_models(cfg), raw, cfg))
    shutil.rmtree(home, ignore_errors=True)
    med = {name: statistics.median(xs) for name, xs in (("build", build), ("run", run),
                                                         ("direct", direct))}  # fmt: skip
    return {
        "rows": rows,
        "dbt_build_s": [round(x, 2) for x in build],
        "dbt_run_s": [round(x, 2) for x in run],
        "duckdb_direct_s": [round(x, 2) for x in direct],
        "dbt_build_median_s": round(med["build"], 2),
        "dbt_run_median_s": round(med["run"], 2),
        "duckdb_direct_median_s": round(med["direct"], 2),
        "build_over_direct": round(med["build"] / med["direct"], 1),
        "run_over_direct": round(med["run"] / med["direct"], 1),
    }


def markdown(figures: dict) -> str:
    lines = [
        f"# Transformation benchmark ({figures['measured_at']})",
        "",
        "| interactions | dbt build median s | dbt run median s | DuckDB direct median s |"
        " build / direct | run / direct |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in figures["results"]:
        lines.append(
            f"| {r['rows']:,} | {r['dbt_build_median_s']} | {r['dbt_run_median_s']}"
            f" | {r['duckdb_direct_median_s']} | {r['build_over_direct']}x"
            f" | {r['run_over_direct']}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    base = config.load()
    work = base.paths.home / "data" / "bench"
    results = [measure(int(n), args.repeats, work, base) for n in args.sizes.split(",")]
    figures = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "results": results}
    base.paths.reports.mkdir(parents=True, exist_ok=True)
    (base.paths.reports / "bench_transform.json").write_text(json.dumps(figures, indent=2) + "\n")
    text = markdown(figures)
    (base.paths.reports / "bench_transform.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
