"""`make bench-demo`: the whole pipeline (`recomart demo`) at issue 14's sizes, timed per stage.

Each size gets its own home under data/bench/demo/<size>/ with a copy of recomart.toml whose
[generator] (and, for the catalog sizes, [catalog]) is changed. The data is generated once per size
(timed apart: a shop brings its own files). Then, `--repeats` times, everything but the generated
data is removed and `recomart demo` runs in a child process: its wall time and peak memory (the
child's maximum resident set, from wait4) are taken here; the stages' and training phases' seconds
from the reports the run writes (run_timings.json, train_metrics.json). Medians go to
reports/bench_demo.json and reports/bench_demo.md.
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
from datetime import UTC, datetime
from pathlib import Path

from recomart.core import config

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
STEPS = ("ingest", "transform", "quality gate", "train")
ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "SODA_CORE_TELEMETRY_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
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
    env = {**os.environ, **ENV, "RECOMART_HOME": str(home),
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


def _clean(home: Path) -> None:
    """Everything of a previous run goes, except the generated data and the config."""
    for child in home.iterdir():
        if child.name in ("recomart.toml", "bench.log"):
            continue
        if child.name == "data":
            for sub in child.iterdir():
                if sub.name != "generated":
                    shutil.rmtree(sub)
        elif child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def bench_size(name: str, repeats: int, root: Path) -> dict:
    sizes, catalog, target, label = SIZES[name]
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    toml = bench_toml((config.PROJECT_ROOT / "recomart.toml").read_text(), sizes, catalog)
    manifest = home / "data" / "generated" / "manifest.json"
    generate_seconds = None
    if not manifest.exists() or (home / "recomart.toml").read_text() != toml:
        (home / "recomart.toml").write_text(toml)
        generate_seconds, _ = _run(["generate", "--force"], home)
    runs = []
    for repeat in range(repeats):
        _clean(home)
        seconds, peak_gb = _run(["demo"], home)
        steps = json.loads((home / "reports" / "run_timings.json").read_text())
        train = json.loads((home / "reports" / "train_metrics.json").read_text())
        runs.append({"wall_seconds": seconds, "peak_gb": peak_gb, "steps": steps,
                     "train_phases": train["timings"]})  # fmt: skip
        print(f"{name} run {repeat + 1}/{repeats}: {seconds:.1f} s, peak {peak_gb:.2f} GB, "
              f"{json.dumps(steps)}", flush=True)  # fmt: skip

    def median(get) -> float:
        return statistics.median(get(run) for run in runs)

    steps = {step: median(lambda r, s=step: r["steps"][s]) for step in runs[0]["steps"]}
    phases = {
        phase: median(lambda r, p=phase: r["train_phases"].get(p, 0.0))
        for phase in runs[0]["train_phases"]
    }
    result = {
        "label": label,
        "sizes": sizes,
        "catalog_source": catalog,
        "repeats": repeats,
        "generate_seconds": generate_seconds,
        "wall_seconds": median(lambda r: r["wall_seconds"]),
        "pipeline_seconds": steps["total"],
        "peak_gb": max(r["peak_gb"] for r in runs),
        "steps": steps,
        "train_phases": phases,
        "target_seconds": target,
        "target_peak_gb": TARGET_MEMORY_GB.get(name),
        "runs": runs,
    }
    if name in TARGET_CATALOG_RATE:
        catalog_seconds = steps["ingest catalog"]
        result["catalog_products_per_second"] = sizes["n_items"] / catalog_seconds
        result["target_products_per_second"] = TARGET_CATALOG_RATE[name]
    return result


def _markdown(results: dict[str, dict], started: str) -> str:
    lines = [
        "# `make bench-demo`: the whole pipeline, per stage",
        "",
        f"Written by `python -m recomart.bench.demo` ({started}, {os.cpu_count()} cores). Medians"
        " of the repeats; `pipeline` is ingest to train in one `recomart demo` process (data"
        " generation apart), `wall` the whole process (imports, summary), `peak` its maximum"
        " resident memory.",
        "",
        "| size | repeats | pipeline s (target) | wall s | peak GB | ingest | transform | gate"
        " | train | catalog products/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.values():
        s = r["steps"]
        rate = r.get("catalog_products_per_second")
        rate_text = f"{rate:,.0f} (> {r['target_products_per_second']:,})" if rate else ""
        peak = f"{r['peak_gb']:.2f}" + (
            f" (< {r['target_peak_gb']:.0f})" if r["target_peak_gb"] else ""
        )
        lines.append(
            f"| {r['label']} | {r['repeats']} | {r['pipeline_seconds']:.1f}"
            f" (< {r['target_seconds']}) | {r['wall_seconds']:.1f} | {peak} | {s['ingest']:.1f}"
            f" | {s['transform']:.1f}"
            f" | {s['quality gate']:.1f} | {s['train']:.1f} | {rate_text} |"
        )
    lines += ["", "## Training phases (seconds, medians)", ""]
    phases = sorted({p for r in results.values() for p in r["train_phases"]})
    lines.append("| phase | " + " | ".join(results) + " |")
    lines.append("|---|" + "---|" * len(results))
    for phase in phases:
        values = [r["train_phases"].get(phase) for r in results.values()]
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
    results = {}
    report = cfg.paths.reports
    report.mkdir(parents=True, exist_ok=True)
    for name in names:
        repeats = args.repeats_large if name == "10m" else args.repeats
        results[name] = bench_size(name, repeats, root)
        # written after each size: a long run leaves what it measured so far
        figures = {"started": started, "cores": os.cpu_count(), "results": results}
        (report / "bench_demo.json").write_text(json.dumps(figures, indent=2) + "\n")
        (report / "bench_demo.md").write_text(_markdown(results, started))
    print(_markdown(results, started))


if __name__ == "__main__":
    main()
