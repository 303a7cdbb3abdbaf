"""`make bench-spark`: the whole pipeline on DuckDB and on Spark, per stage, at 1M and 10M rows.

The same code and the same generated data for both engines: each size's data is generated once
(under data/bench/spark/<size>/generated) and linked into one home per engine,
data/bench/spark/<size>/<engine>/, whose recomart.toml is the project's with the size's
[generator] (bench.demo's SIZES). `recomart --engine <engine> demo` runs there `--repeats` times
in a child process (the first run cold, the others warm, as `make bench-demo` does); the stages'
seconds come from the run's own reports (run_timings.json, train_metrics.json). The report,
reports/bench_spark.{json,md}, puts the engines side by side per stage (Spark / DuckDB) and shows
how each engine's cost grows from one size to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from recomart.bench.demo import SIZES, _clean, _generated_as, _run, _summary, bench_toml
from recomart_core import config
from recomart_core.engine import DUCKDB, SPARK

ENGINES = (DUCKDB, SPARK)
DEFAULT_SIZES = ("1m", "10m")
STAGES = ("ingest", "transform", "quality gate", "train", "total")
REPORT = "bench_spark"


def _generated(name: str, root: Path, toml: str) -> Path:
    """The size's generated data, made once under root/<size>/generated (`recomart generate`)."""
    home = root / name / "generate"
    home.mkdir(parents=True, exist_ok=True)
    (home / "recomart.toml").write_text(toml)
    if not _generated_as(home / "data" / "generated", tomllib.loads(toml)["generator"]):
        _run(["generate", "--force"], home)
    return home / "data" / "generated"


def bench_engine(name: str, engine: str, repeats: int, root: Path) -> dict:
    """`recomart --engine <engine> demo`, repeats times, in root/<size>/<engine>: the cold run,
    then the warm median (bench.demo._summary)."""
    sizes, catalog, _, label = SIZES[name]
    toml = bench_toml((config.PROJECT_ROOT / "recomart.toml").read_text(), sizes, catalog)
    generated = _generated(name, root, toml)
    home = root / name / engine
    home.mkdir(parents=True, exist_ok=True)
    (home / "recomart.toml").write_text(toml)
    if not (home / "data" / "generated").exists():
        (home / "data").mkdir(exist_ok=True)
        shutil.copytree(generated, home / "data" / "generated", copy_function=os.link)
    runs = []
    for repeat in range(repeats):
        _clean(home, cold=repeat == 0)
        seconds, peak_gb = _run(["--engine", engine, "demo"], home)
        steps = json.loads((home / "reports" / "run_timings.json").read_text())
        train = json.loads((home / "reports" / "train_metrics.json").read_text())
        runs.append({"cold": repeat == 0, "wall_seconds": seconds, "peak_gb": peak_gb,
                     "steps": steps, "train_phases": train["timings"],
                     "promotion": {key: train["promotion"][key]
                                   for key in ("metric", "candidate", "baselines")}})  # fmt: skip
        print(f"{name} {engine} run {repeat + 1}/{repeats}: {seconds:.1f} s, peak"
              f" {peak_gb:.2f} GB, {json.dumps(steps)}, holdout"
              f" {json.dumps(runs[-1]['promotion'])}", flush=True)  # fmt: skip
    return {
        "label": label,
        "engine": engine,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "repeats": repeats,
        "cold": _summary(runs[:1]),
        "warm": _summary(runs[1:]) if len(runs) > 1 else None,
        "runs": runs,
    }


def _shown(result: dict) -> dict:
    return result["warm"] or result["cold"]


def _markdown(results: dict[str, dict[str, dict]], started: str) -> str:
    lines = [
        "# `make bench-spark`: the whole pipeline on DuckDB and on Spark, per stage",
        "",
        f"Written by `python -m recomart.bench.spark` (last run {started}, {os.cpu_count()}"
        " cores; Spark `[spark] master` as in recomart.toml). Seconds per stage of one"
        " `recomart --engine <engine> demo` (the warm median where there are warm runs, else the"
        " cold run); `wall` includes start-up. Same code, same generated data for both engines.",
        "",
        "| size | engine | measured | runs | wall s | peak GB | "
        + " | ".join(STAGES)
        + " | holdout model / popularity |",
        "|---|---|---|---|---|---|" + "---|" * (len(STAGES) + 1),
    ]
    for engines in results.values():
        for engine, r in engines.items():
            shown = _shown(r)
            steps = " | ".join(f"{shown['steps'].get(s, 0.0):.1f}" for s in STAGES)
            gate = r["runs"][-1]["promotion"]
            popularity = gate["baselines"].get("popularity", float("nan"))
            holdout = f"{gate['metric']} {gate['candidate']:.4f} / {popularity:.4f}"
            lines.append(
                f"| {r['label']} | {engine} | {r['measured_at']} | {r['repeats']}"
                f" | {shown['wall_seconds']:.1f} | {shown['peak_gb']:.2f} | {steps} | {holdout} |"
            )
    lines += ["", "## Spark / DuckDB, per stage", "", "| size | " + " | ".join(STAGES) + " |"]
    lines.append("|---|" + "---|" * len(STAGES))
    for name, engines in results.items():
        if set(ENGINES) <= set(engines):
            spark, duck = _shown(engines[SPARK])["steps"], _shown(engines[DUCKDB])["steps"]
            ratios = " | ".join(
                f"{spark[s] / duck[s]:.1f}x" if duck.get(s) and s in spark else "" for s in STAGES
            )
            lines.append(f"| {name} | {ratios} |")
    names = list(results)
    if len(names) > 1:
        small, large = names[0], names[-1]
        lines += [
            "",
            f"## Growth from {small} to {large} (seconds at {large} / seconds at {small})",
            "",
            "| engine | " + " | ".join(STAGES) + " |",
            "|---|" + "---|" * len(STAGES),
        ]
        for engine in ENGINES:
            if engine in results[small] and engine in results[large]:
                a, b = (
                    _shown(results[small][engine])["steps"],
                    _shown(results[large][engine])["steps"],
                )
                growth = " | ".join(f"{b[s] / a[s]:.1f}x" if a.get(s) else "" for s in STAGES)
                lines.append(f"| {engine} | {growth} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(DEFAULT_SIZES), help=f"of {', '.join(SIZES)}")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.sizes.split(",") if n.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := (set(names) - set(SIZES)) | (set(engines) - set(ENGINES)):
        parser.error(f"unknown size(s) or engine(s) {sorted(unknown)}")
    cfg = config.load()
    root = cfg.paths.home / "data" / "bench" / "spark"
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = cfg.paths.reports
    report.mkdir(parents=True, exist_ok=True)
    previous = report / f"{REPORT}.json"  # what is not run again keeps its last figures
    results: dict[str, dict[str, dict]] = (
        json.loads(previous.read_text())["results"] if previous.exists() else {}
    )
    for name in names:
        for engine in engines:
            results.setdefault(name, {})[engine] = bench_engine(name, engine, args.repeats, root)
            results = {n: results[n] for n in SIZES if n in results}
            figures = {"started": started, "cores": os.cpu_count(), "results": results}
            (report / f"{REPORT}.json").write_text(json.dumps(figures, indent=2) + "\n")
            (report / f"{REPORT}.md").write_text(_markdown(results, started))
    print(_markdown(results, started))


if __name__ == "__main__":
    main()
