"""`make bench-serve`: how fast the recommendation API answers, in process and over HTTP.

1. In process: ServingModel.recommend (what GET /recommendations/{user_id} runs, response dict
   included) on 10,000 calls, users drawn from the model's users plus 10% unknown ids, k = 10;
   beside it, the model's own recommend_items (scoring at request time) for comparison.
2. Over HTTP on loopback: `recomart serve` in its own process (access log off, as in
   production behind a proxy), then recomart.bench.loadgen at a fixed rate for `duration`
   seconds at each concurrency level (keep-alive connections): p50/p95/p99 from each request's
   due time, achieved requests per second, errors.

Figures go to <paths.reports>/bench_serve.json and .md. Needs a trained champion
(`make demo` or `make train`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from urllib.parse import quote

import numpy as np

from recomart.bench import loadgen
from recomart.core import config

TARGET_P99_MS_HTTP = 5.0
TARGET_P99_MS_IN_PROCESS = 0.5
UNKNOWN_SHARE = 0.1
SEED = 7


def _users(model_user_ids: np.ndarray, n: int) -> np.ndarray:
    """n shop user ids (str) drawn from the model's, UNKNOWN_SHARE of them unknown ids."""
    rng = np.random.default_rng(SEED)
    users = rng.choice(np.asarray(model_user_ids, dtype=object), size=n)
    unknown = rng.random(n) < UNKNOWN_SHARE
    numbers = rng.integers(0, 10**6, unknown.sum()).astype(str).astype(object)
    users[unknown] = "unknown-user-" + numbers
    return users


def _percentiles(ms: np.ndarray) -> dict:
    return {
        "calls": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "mean_ms": round(float(ms.mean()), 4),
    }


def in_process(cfg: config.Config, calls: int, k: int) -> tuple[dict, np.ndarray]:
    from models_ml.serving.loader import RegistrySource
    from models_ml.serving.settings import ServeSettings

    settings = ServeSettings.from_config(cfg.settings.serve)
    source = RegistrySource(cfg)
    try:
        t0 = time.perf_counter()
        served = source.load(
            source.champion_version(), settings.max_k, settings.precompute_max_users
        )
        load_seconds = time.perf_counter() - t0
    finally:
        source.close()
    users = _users(served.user_ids, calls).tolist()
    for u in users[:200]:  # warm-up
        served.recommend(u, k)
    ms = np.empty(calls)
    for i, u in enumerate(users):
        t = time.perf_counter_ns()
        served.recommend(u, k)
        ms[i] = (time.perf_counter_ns() - t) / 1e6
    n_model = min(calls, 2000)
    model_ms = np.empty(n_model)
    for i, u in enumerate(users[:n_model]):
        t = time.perf_counter_ns()
        served.model.recommend_items(u, k)
        model_ms[i] = (time.perf_counter_ns() - t) / 1e6
    figures = {
        "model_version": served.info.version,
        "n_users": served.n_users,
        "n_items": served.n_items,
        "load_seconds": round(load_seconds, 3),
        "k": k,
        "serving_recommend": _percentiles(ms),
        "model_recommend_items_for_comparison": _percentiles(model_ms),
        "target_p99_ms": TARGET_P99_MS_IN_PROCESS,
    }
    return figures, served.user_ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "recomart.cli", "serve", "--port", str(port), "--no-access-log"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"recomart serve exited {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("recomart serve did not become ready in 120 s")


def over_http(
    user_ids: np.ndarray, rates: list[float], levels: list[int], duration: float, k: int
) -> list[dict]:
    port = _free_port()
    server = _start_server(port)
    users = _users(user_ids, 1_000_000)
    try:

        def path(i: int) -> str:
            return f"/recommendations/{quote(users[i % len(users)], safe='')}?k={k}"

        loadgen.run("127.0.0.1", port, path, 100, 2, 4)  # warm-up
        results = []
        for rate in rates:
            for level in levels:
                result = loadgen.run("127.0.0.1", port, path, rate, duration, level).summary()
                result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
                print(json.dumps(result), flush=True)
                results.append(result)
        return results
    finally:
        server.terminate()
        server.wait(timeout=15)


def markdown(figures: dict) -> str:
    ip = figures["in_process"]
    s, m = ip["serving_recommend"], ip["model_recommend_items_for_comparison"]
    lines = [
        "# Serving benchmark (`make bench-serve`)",
        "",
        f"{figures['generated_at']}, {figures['machine']}. Model version {ip['model_version']}: "
        f"{ip['n_users']} users, {ip['n_items']} items, k = {ip['k']}, 10% unknown users.",
        "",
        "## In process",
        "",
        "| call | calls | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|---:|",
        f"| ServingModel.recommend (the API's path) | {s['calls']} | {s['p50_ms']} | "
        f"{s['p99_ms']} | {s['mean_ms']} |",
        f"| model.recommend_items (scored per call) | {m['calls']} | {m['p50_ms']} | "
        f"{m['p99_ms']} | {m['mean_ms']} |",
        "",
        f"Target p99 < {TARGET_P99_MS_IN_PROCESS} ms. Model load (download, read, precompute): "
        f"{ip['load_seconds']} s.",
        "",
        "## HTTP on loopback (GET /recommendations/{user_id}?k=10, fixed rate)",
        "",
        "| target rps | connections | seconds | requests | achieved rps | errors | p50 ms | "
        "p95 ms | p99 ms | max ms | service p50 / p99 ms | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in figures["http"]:
        lines.append(
            f"| {r['target_rps']:g} | {r['concurrency']} | {r['duration_seconds']} | "
            f"{r['requests']} | {r['achieved_rps']} | {r['errors']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['service_p50_ms']} / "
            f"{r['service_p99_ms']} | {r['load_average_1min_after']} |"
        )
    lines += [
        "",
        f"Target: p99 < {TARGET_P99_MS_HTTP} ms at 200 rps, zero errors. Latency counts from each "
        "request's due time (open model); client and server share the machine's cores. Load "
        f"average at the start {figures['load_average_at_start']} (1, 5, 15 min; other "
        "processes on the machine add to the tail). Service: from the request's write to its "
        "answer, without the load generator's own scheduling lateness.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000, help="in-process calls")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per HTTP run")
    parser.add_argument("--rates", default="200", help="requests per second, comma-separated")
    parser.add_argument("--concurrency", default="1,8,32", help="connections, comma-separated")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    cfg = config.load()
    ip, user_ids = in_process(cfg, args.calls, args.k)
    print(json.dumps(ip, indent=2), flush=True)
    rates = [float(r) for r in args.rates.split(",")]
    levels = [int(c) for c in args.concurrency.split(",")]
    figures = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "command": "python -m recomart.bench.serve " + " ".join(argv or sys.argv[1:]),
        "in_process": ip,
        "http": over_http(user_ids, rates, levels, args.duration, args.k),
    }
    cfg.paths.reports.mkdir(parents=True, exist_ok=True)
    (cfg.paths.reports / "bench_serve.json").write_text(json.dumps(figures, indent=2) + "\n")
    text = markdown(figures)
    (cfg.paths.reports / "bench_serve.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
