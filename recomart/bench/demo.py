"""`make bench-demo`: the whole pipeline (`recomart demo`) at issue 14's sizes, timed per stage.

Each size gets its own home under data/bench/demo/<size>/ with a copy of recomart.toml whose
[generator] (and, for the catalog sizes, [catalog]) is changed. The data is generated once per size
(timed apart: a shop brings its own files; sizes with the same generator settings share it). Then
`recomart demo` runs `--repeats` times in a child process: the first run cold (everything but the
generated data removed), the others warm (dbt's parse cache and the MLflow store of the run before
kept). Its wall time and peak memory (the child's maximum resident set, from wait4) are taken
here; the stages' and training phases' seconds from the reports the run writes
(run_timings.json, train_metrics.json). Figures go to reports/bench_demo.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from recomart_core import config

# name -> (generator sizes, [catalog] source, target seconds for the pipeline, what it stands for)
SIZES: dict[str, tuple[dict[str, int], str, float, str]] = {
    "100k": ({"n_interactions": 100_000, "n_users": 5_000, "n_items": 1_000}, "api", 15,
             "100K interactions, 5K users, 1K products (the default)"),
    "1m": ({"n_interactions": 1_000_000, "n_users": 50_000, "n_items": 10_000}, "api", 60,
           "1M interactions, 50K users, 10K products"),
    "10m": ({"n_interactions": 10_000_000, "n_users": 500_000, "n_items": 50_000}, "api", 600,
            "10M interactions, 500K users, 50K products"),
    "catalog-file": ({"n_interactions": 100_000, "n_users": 5_000, "n_items": 1_000_000}, "files",
                     60, "100K interactions, 1M-product catalog from a file"),
    "catalog-rest": ({"n_interactions": 100_000, "n_users": 5_000, "n_items": 1_000_000}, "api",
                     60, "100K interactions, 1M-product catalog over the embedded REST API"),
}  # fmt: skip
TARGET_MEMORY_GB = {"10m": 8.0}
TARGET_CATALOG_RATE = {"catalog-file": 50_000, "catalog-rest": 20_000}  # products/s
RECOMART = Path(sys.executable).with_name("recomart")


def bench_toml(text: str, sizes: dict[str, int], catalog: str) -> str:
    """The project's recomart.toml with [generator] sizes and [catalog] source replaced."""
    for key, value in sizes.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if n != 1:
            raise ValueError(f"recomart.toml has no single `{key} = ` line to replace")
    if catalog == "files":
        text = re.sub(r'(?m)^source = "api".*$', 'source = "files"\nfiles = "data/generated/'
                      'catalog/products.json"', text)  # fmt: skip
    return text


def _run(command: list[str], home: Path) -> tuple[float, float]:
    """Run a recomart command in home: (wall seconds, peak resident GB of the child)."""
    # the command switches every tool's telemetry off itself (recomart_core.env)
    env = {**os.environ, "RECOMART_HOME": str(home),
           "RECOMART_CONFIG": str(home / "recomart.toml")}  # fmt: skip
    env.pop("SOURCES__CATALOG__BASE_URL", None)
    log = (home / "bench.log").open("ab")
    started = time.perf_counter()
    child = subprocess.Popen([str(RECOMART), *command], env=env, stdout=log, stderr=log)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    if child.returncode != 0:
        raise RuntimeError(f"`recomart {' '.join(command)}` failed in {home}: see {home}/bench.log")
    return seconds, usage.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


# What a project keeps from one run to the next, besides its data: dbt's parse cache (in the
# home's dbt_target) and the MLflow store (whose champion the next model is compared with).
TOOL_STATE = ("dbt_target", "data/mlflow")


def _clean(home: Path, cold: bool) -> None:
    """Everything of a previous run goes, except the generated data and the config, and (not
    cold) the tools' state of TOOL_STATE."""
    keep = {"recomart.toml", "bench.log", "data/generated", *(() if cold else TOOL_STATE)}
    for child in [*home.iterdir(), *(home / "data").glob("*")]:
        name = child.relative_to(home).as_posix()
        if name in keep or name == "data" or not child.exists():
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _summary(runs: list[dict]) -> dict:
    """Medians of runs: wall and pipeline seconds, per step and per training phase; peak GB."""

    def median(get) -> float:
        return statistics.median(get(run) for run in runs)

    steps = {step: median(lambda r, s=step: r["steps"][s]) for step in runs[0]["steps"]}
    return {
        "runs": len(runs),
        "wall_seconds": median(lambda r: r["wall_seconds"]),
        "pipeline_seconds": steps["total"],
        "peak_gb": max(r["peak_gb"] for r in runs),
        "steps": steps,
        "train_phases": {
            phase: median(lambda r, p=phase: r["train_phases"].get(p, 0.0))
            for phase in runs[0]["train_phases"]
        },
    }


def _generated_as(generated: Path, settings: dict) -> bool:
    """True when generated/ holds the data of these [generator] settings (its manifest says)."""
    manifest = generated / "manifest.json"
    if not manifest.exists():
        return False
    made = json.loads(manifest.read_text())
    return all(str(made.get(key)) == str(value) for key, value in settings.items())


def _generated_twin(name: str, root: Path) -> Path | None:
    """The generated data of another size with the same generator settings, if there is one."""
    for other, (sizes, *_) in SIZES.items():
        generated = root / other / "data" / "generated"
        if other != name and sizes == SIZES[name][0] and (generated / "manifest.json").exists():
            return generated
    return None


def bench_size(name: str, repeats: int, root: Path) -> dict:
    """Run 1 is cold (a fresh clone's first run: no dbt parse cache, no MLflow store); runs
    2..repeats are warm (the tools' state of the run before kept, the data and warehouse not)."""
    sizes, catalog, target, label = SIZES[name]
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    toml = bench_toml((config.PROJECT_ROOT / "recomart.toml").read_text(), sizes, catalog)
    (home / "recomart.toml").write_text(toml)
    generate_seconds = None
    if not _generated_as(home / "data" / "generated", tomllib.loads(toml)["generator"]):
        twin = _generated_twin(name, root)
        if twin is not None:  # same generator settings: the same data, linked not regenerated
            shutil.rmtree(home / "data" / "generated", ignore_errors=True)
            shutil.copytree(twin, home / "data" / "generated", copy_function=os.link)
        else:
            generate_seconds, _ = _run(["generate", "--force"], home)
    runs = []
    for repeat in range(repeats):
        _clean(home, cold=repeat == 0)
        seconds, peak_gb = _run(["demo"], home)
        steps = json.loads((home / "reports" / "run_timings.json").read_text())
        train = json.loads((home / "reports" / "train_metrics.json").read_text())
        runs.append({"cold": repeat == 0, "wall_seconds": seconds, "peak_gb": peak_gb,
                     "steps": steps, "train_phases": train["timings"]})  # fmt: skip
        kind = "cold" if repeat == 0 else "warm"
        print(f"{name} run {repeat + 1}/{repeats} ({kind}): {seconds:.1f} s,"
              f" peak {peak_gb:.2f} GB, {json.dumps(steps)}", flush=True)  # fmt: skip
    cold = _summary(runs[:1])
    warm = _summary(runs[1:]) if len(runs) > 1 else None
    shown = warm or cold
    result = {
        "label": label,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "sizes": sizes,
        "catalog_source": catalog,
        "repeats": repeats,
        "generate_seconds": generate_seconds,
        "cold": cold,
        "warm": warm,
        "peak_gb": max(r["peak_gb"] for r in runs),
        "target_seconds": target,
        "target_peak_gb": TARGET_MEMORY_GB.get(name),
        "runs": runs,
    }
    if name in TARGET_CATALOG_RATE:
        result["catalog_products_per_second"] = sizes["n_items"] / shown["steps"]["ingest catalog"]
        result["target_products_per_second"] = TARGET_CATALOG_RATE[name]
    return result


def _markdown(results: dict[str, dict], started: str) -> str:
    lines = [
        "# `make bench-demo`: the whole pipeline, per stage",
        "",
        f"Written by `python -m recomart.bench.demo` (last run {started}, {os.cpu_count()} cores;"
        " each size says when it was measured: sizes not run keep their last figures).",
        "`pipeline` is ingest to train in one `recomart demo` process (data generation apart);"
        " `cold` is a fresh clone's first run (dbt parses the whole project, MLflow creates its"
        " store), `warm` the median of the runs after it (dbt's parse cache and the MLflow store"
        " kept, the data and warehouse not: a shop's next daily run). The stage columns and the"
        " training phases are the warm medians where there are warm runs. `peak` is the largest"
        " resident memory of the `recomart demo` process and its children.",
        "",
        "| size | measured | runs | pipeline s cold / warm (target) | peak GB | ingest | transform"
        " | gate | train | catalog products/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        shown = r["warm"] or r["cold"]
        s = shown["steps"]
        warm = f"{r['warm']['pipeline_seconds']:.1f}" if r["warm"] else "-"
        rate = r.get("catalog_products_per_second")
        rate_text = f"{rate:,.0f} (> {r['target_products_per_second']:,})" if rate else ""
        peak = f"{r['peak_gb']:.2f}" + (
            f" (< {r['target_peak_gb']:.0f})" if r["target_peak_gb"] else ""
        )
        lines.append(
            f"| {r['label']} | {r['measured_at']} | {r['repeats']}"
            f" | {r['cold']['pipeline_seconds']:.1f} / {warm} (< {r['target_seconds']})"
            f" | {peak} | {s['ingest']:.1f} | {s['transform']:.1f} | {s['quality gate']:.1f}"
            f" | {s['train']:.1f} | {rate_text} |"
        )
    lines += ["", "## Training phases (seconds, warm medians where there are warm runs)", ""]
    shown = {name: (r["warm"] or r["cold"])["train_phases"] for name, r in results.items()}
    phases = sorted({p for values in shown.values() for p in values})
    lines.append("| phase | " + " | ".join(results) + " |")
    lines.append("|---|" + "---|" * len(results))
    for phase in phases:
        values = [shown[name].get(phase) for name in results]
        lines.append(
            f"| {phase.removesuffix('_seconds')} | "
            + " | ".join("" if v is None else f"{v:.2f}" for v in values)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"of {', '.join(SIZES)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repeats-large", type=int, default=1, help="for 10m")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.sizes.split(",") if n.strip()]
    unknown = set(names) - set(SIZES)
    if unknown:
        parser.error(f"unknown size(s) {sorted(unknown)}; known: {', '.join(SIZES)}")
    cfg = config.load()
    root = cfg.paths.home / "data" / "bench" / "demo"
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = cfg.paths.reports
    report.mkdir(parents=True, exist_ok=True)
    # sizes not run this time keep their last figures (each says when it was measured)
    previous = report / "bench_demo.json"
    kept = json.loads(previous.read_text())["results"] if previous.exists() else {}
    results = {name: kept[name] for name in SIZES if name in kept and name not in names}
    for name in names:
        repeats = args.repeats_large if name == "10m" else args.repeats
        results[name] = bench_size(name, repeats, root)
        results = {n: results[n] for n in SIZES if n in results}  # the table's order
        # written after each size: a long run leaves what it measured so far
        figures = {"started": started, "cores": os.cpu_count(), "results": results}
        (report / "bench_demo.json").write_text(json.dumps(figures, indent=2) + "\n")
        (report / "bench_demo.md").write_text(_markdown(results, started))
    print(_markdown(results, started))


if __name__ == "__main__":
    main()
