"""`make bench-ingest`: our CSV ingestion beside DuckDB's own read_csv, same files, same run.

For each size, the interactions CSV is generated once; then, repeated, DuckDB reads it into a table
of a new database file (`create table as select * from read_csv(...)`, types sniffed), and the
project loads it with `load_interactions` into a new warehouse (hash, land, parse, type,
quarantine, stage, and dlt's extract, normalize and load). Medians of the repeats, rows per
second, the ratio of the medians and the median of the paired ratios go to
reports/bench_ingest.json and .md.
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

from recomart.demo import datagen
from recomart_core import config


def _native_seconds(csv: Path, db: Path) -> float:
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(db)) as con:
        con.execute("create table t as select * from read_csv($p)", {"p": str(csv)}).fetchall()
    return time.perf_counter() - started


def _project_seconds(csv: Path, home: Path, cfg: config.Config) -> float:
    from dlt_pipelines.interactions_pipeline import load_interactions

    shutil.rmtree(home / "data" / "warehouse", ignore_errors=True)
    shutil.rmtree(home / "data" / "dlt", ignore_errors=True)
    shutil.rmtree(home / "data" / "raw", ignore_errors=True)
    started = time.perf_counter()
    load_interactions(cfg, str(csv))
    return time.perf_counter() - started


def run(sizes: list[int], repeats: int, work: Path) -> dict:
    """Measure every size; return the figures."""
    base = config.load()
    results = []
    for rows in sizes:
        home = work / f"rows_{rows}"
        shutil.rmtree(home, ignore_errors=True)
        paths = dataclasses.replace(
            base.paths,
            home=home,
            warehouse=home / "data" / "warehouse" / "recomart.duckdb",
            dlt_pipelines=home / "data" / "dlt",
        )
        cfg = dataclasses.replace(base, paths=paths)
        gen = {**base.generator, "n_interactions": rows, "n_users": 20_000, "n_items": 3_000}
        datagen.generate(home / "generated", **gen)
        csv = home / "generated" / datagen.INTERACTIONS_FILE
        native, project = [], []
        for _ in range(repeats):  # interleaved, so drift hits both alike
            native.append(_native_seconds(csv, home / "native.duckdb"))
            project.append(_project_seconds(csv, home, cfg))
        n_med, p_med = statistics.median(native), statistics.median(project)
        pairs = [p / n for n, p in zip(native, project, strict=True)]
        results.append({
            "rows": rows,
            "file_mb": round(csv.stat().st_size / 1e6, 1),
            "duckdb_read_csv_s": [round(x, 3) for x in native],
            "project_ingest_s": [round(x, 3) for x in project],
            "duckdb_median_s": round(n_med, 3),
            "project_median_s": round(p_med, 3),
            "duckdb_rows_per_s": round(rows / n_med),
            "project_rows_per_s": round(rows / p_med),
            "ratio": round(p_med / n_med, 2),
            # each project run against the DuckDB run just before it: robust to drift
            "pair_ratios": [round(x, 2) for x in pairs],
            "median_pair_ratio": round(statistics.median(pairs), 2),
        })  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeats": repeats,
        "results": results,
    }


def markdown(figures: dict) -> str:
    lines = [
        f"# Ingestion benchmark ({figures['measured_at']})",
        "",
        "| rows | file MB | DuckDB read_csv median s | project median s | DuckDB rows/s |"
        " project rows/s | project / DuckDB | median of paired ratios |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in figures["results"]:
        lines.append(
            f"| {r['rows']:,} | {r['file_mb']} | {r['duckdb_median_s']} | {r['project_median_s']}"
            f" | {r['duckdb_rows_per_s']:,} | {r['project_rows_per_s']:,} | {r['ratio']}x"
            f" | {r['median_pair_ratio']}x |"
        )
    lines += [
        "",
        f"Repeats: {figures['repeats']}, interleaved (DuckDB, then the project, then again).",
        "Paired ratio: a project run over the DuckDB run just before it.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    cfg = config.load()
    figures = run(
        [int(x) for x in args.sizes.split(",")], args.repeats, cfg.paths.home / "data" / "bench"
    )
    cfg.paths.reports.mkdir(parents=True, exist_ok=True)
    (cfg.paths.reports / "bench_ingest.json").write_text(json.dumps(figures, indent=2) + "\n")
    text = markdown(figures)
    (cfg.paths.reports / "bench_ingest.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
