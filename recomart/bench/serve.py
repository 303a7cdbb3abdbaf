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

At real-shop size, without the pipeline: `--synthetic-users 500000 --synthetic-items 50000`
builds a champion of that size (recomart.bench.synthetic_model: generated interactions, the
project's fit, package, log_pyfunc and registry, in a home of its own under
data/bench/serve/, reused by later runs) and measures it the same way, plus the server's start
time (process start to /health ready, and the loader's own seconds) and its peak RSS (VmHWM).
Above [serve] precompute_max_users users every list is scored per request. Figures go to
<paths.reports>/bench_serve_synthetic.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np

from recomart.bench import loadgen
from recomart_core import config
from recomart_core.rulesets import Boost, Diversity, Filters, Pin, Rules, load_rule_set

TARGET_P99_MS_HTTP = 5.0
TARGET_P99_MS_IN_PROCESS = 0.5
# at real-shop size, scored per request (issue 14)
TARGET_P99_MS_HTTP_SCORED = 10.0
TARGET_START_SECONDS = 30.0
TARGET_RSS_GB = 4.0
TARGET_RULES_ADDED_P99_MS = 2.0  # issue 29: rules add at most 2 ms p99 at 50,000 items
SYNTHETIC_DIR = Path("data") / "bench" / "serve"  # under the project home
PATHS = ("model", "blend", "popular")  # known users, few interactions, unknown users
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


def _time_calls(served, users: list[str], k: int) -> np.ndarray:
    """Milliseconds of served.recommend(user, k) per user (after a short warm-up)."""
    for u in users[:200]:
        served.recommend(u, k)
    ms = np.empty(len(users))
    for i, u in enumerate(users):
        t = time.perf_counter_ns()
        served.recommend(u, k)
        ms[i] = (time.perf_counter_ns() - t) / 1e6
    return ms


def _rule_requests(served) -> dict[str, Rules]:
    """The rules the benchmark times: every surface of the project's rule set (rules.toml) that
    has rules, and one request with all kinds at once (two categories, a price cap, 20 excluded
    items, a pin, a boost, at most 3 per category)."""
    rule_set = load_rule_set(config.PROJECT_ROOT / "rules.toml")
    out = {f"surface {name}": rules for name, rules in rule_set.surfaces.items() if not rules.empty}
    table = served.table
    counts = np.bincount(table.category_codes[table.category_codes >= 0])
    names = [str(table.categories[c]) for c in np.argsort(-counts)[:2]]
    items = table.item_ids[:21].tolist()
    out["a request with every kind of rule"] = Rules(
        filters=Filters(categories=names or None, price_max=200.0),
        exclude_item_ids=items[1:],
        exclude_bought="always",
        pins=[Pin(item_id=items[0], position=3)],
        boosts=[Boost(when=Filters(price_max=20.0), multiplier=1.5)],
        diversity=Diversity(max_per_category=3),
    )
    return out


def _time_rules(served, users: list[str], k: int, rules: Rules) -> np.ndarray:
    """Milliseconds of served.recommend_with_rules(user, k, rules) per user (after a warm-up)."""
    now = time.time()
    for u in users[:200]:
        served.recommend_with_rules(u, k, rules, now=now)
    ms = np.empty(len(users))
    for i, u in enumerate(users):
        t = time.perf_counter_ns()
        served.recommend_with_rules(u, k, rules, now=now)
        ms[i] = (time.perf_counter_ns() - t) / 1e6
    return ms


def _users_by_path(served, n: int) -> dict[str, list[str]]:
    """Up to n shop user ids per path: known users (model), few interactions (blend), unknown."""
    rng = np.random.default_rng(SEED + 1)
    model = served.model
    paths = model.user_paths(model.user_ids)
    out = {}
    for path in PATHS[:2]:
        ids = served.user_ids[paths == path]
        out[path] = (
            rng.choice(ids, size=min(n, len(ids)), replace=False).tolist() if len(ids) else []
        )
    numbers = rng.integers(0, 10**6, n).astype(str).astype(object)
    out["popular"] = ("unknown-user-" + numbers).tolist()
    return out


def in_process(cfg: config.Config, calls: int, k: int) -> tuple[dict, np.ndarray]:
    from threadpoolctl import threadpool_limits

    from serving.loader import RegistrySource
    from serving.settings import ServeSettings

    threadpool_limits(1, "blas")  # as `recomart serve` runs
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
    ms = _time_calls(served, users, k)
    by_path = {
        path: _percentiles(_time_calls(served, ids, k))
        for path, ids in _users_by_path(served, min(calls, 2000)).items()
        if ids
    }
    n_rules = min(calls, 2000)
    rules = {
        name: _percentiles(_time_rules(served, users[:n_rules], k, request))
        for name, request in _rule_requests(served).items()
    }
    plain = _percentiles(ms[:n_rules])
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
        "precompute_max_users": settings.precompute_max_users,
        "scored_per_request": served.n_users > settings.precompute_max_users,
        "load_seconds": round(load_seconds, 3),
        "k": k,
        "serving_recommend": _percentiles(ms),
        "serving_recommend_by_path": by_path,
        # the rules engine (models_ml.rules) on the same users, beside the plain path's first
        # n_rules calls: what rules add to a request
        "rules": {"plain": plain, **rules},
        "model_recommend_items_for_comparison": _percentiles(model_ms),
        "target_p99_ms": TARGET_P99_MS_IN_PROCESS,
    }
    return figures, served.user_ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory(pid: int) -> dict:
    """VmHWM (peak resident set) and VmRSS of a process, in GB (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    kb = {k: int(v) for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", text, re.M)}
    return {"peak_rss_gb": round(kb["VmHWM"] / 2**20, 3), "rss_gb": round(kb["VmRSS"] / 2**20, 3)}


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_server(port: int, env: dict | None = None, log: Path | None = None):
    """`recomart serve` on port; (process, seconds from its start to /health ready)."""
    cmd = [sys.executable, "-m", "recomart.cli", "serve", "--port", str(port), "--no-access-log"]
    err = log.open("w") if log else subprocess.PIPE
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            why = log.read_text() if log else proc.stderr.read()
            raise RuntimeError(f"recomart serve exited {proc.returncode}: {why}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - started
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("recomart serve did not become ready in 300 s")


LOADED = re.compile(r"loaded in ([0-9.]+) s")


def over_http(
    user_ids: np.ndarray,
    rates: list[float],
    levels: list[int],
    duration: float,
    k: int,
    env: dict | None = None,
    log: Path | None = None,
) -> tuple[list[dict], dict]:
    """loadgen runs against a fresh `recomart serve`; (results, the server's start time and
    memory)."""
    port = _free_port()
    server, start_seconds = _start_server(port, env, log)
    server_figures = {"start_to_ready_seconds": round(start_seconds, 2)}
    server_figures.update({f"{key}_at_ready": v for key, v in _memory(server.pid).items()})
    if log:
        found = LOADED.findall(log.read_text())
        server_figures["loader_seconds"] = float(found[-1]) if found else None
    users = _users(user_ids, 1_000_000)
    try:

        def path(i: int) -> str:
            return f"/recommendations/{quote(users[i % len(users)], safe='')}?k={k}"

        loadgen.run("127.0.0.1", port, path, 100, 2, 4)  # warm-up
        results = []
        for rate in rates:
            for level in levels:
                cpu = _cpu_seconds(server.pid)
                result = loadgen.run("127.0.0.1", port, path, rate, duration, level).summary()
                if cpu is not None:  # the server's own work, whatever else runs on the machine
                    used = _cpu_seconds(server.pid) - cpu
                    result["server_cpu_ms_per_request"] = round(1000 * used / result["requests"], 3)
                result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
                print(json.dumps(result), flush=True)
                results.append(result)
        server_figures.update(_memory(server.pid))  # peak over start-up and every run
        return results, server_figures
    finally:
        server.terminate()
        server.wait(timeout=15)


def markdown(figures: dict) -> str:
    ip = figures["in_process"]
    s, m = ip["serving_recommend"], ip["model_recommend_items_for_comparison"]
    scored = ip.get("scored_per_request", False)
    http_target = TARGET_P99_MS_HTTP_SCORED if scored else TARGET_P99_MS_HTTP
    synthetic = figures.get("synthetic")
    title = "Serving benchmark (`make bench-serve`)"
    if synthetic:
        title += f": synthetic champion, {ip['n_users']:,} users x {ip['n_items']:,} items"
    lines = [
        f"# {title}",
        "",
        f"{figures['generated_at']}, {figures['machine']}. Model version {ip['model_version']}: "
        f"{ip['n_users']} users, {ip['n_items']} items, k = {ip['k']}, 10% unknown users. "
        + (
            f"Lists scored per request (more users than precompute_max_users = "
            f"{ip['precompute_max_users']:,})."
            if scored
            else "Lists precomputed at load."
        ),
        "",
    ]
    if synthetic:
        spec, t = synthetic["spec"], synthetic["timings"]
        lines += [
            f"Synthetic model (recomart.bench.synthetic_model, command `{figures['command']}`): "
            f"{synthetic['interaction_rows']:,} generated interactions (UUID user ids, log-normal "
            f"activity, Zipf item popularity, {synthetic['matrix_nnz']:,} matrix cells), the "
            f"project's fit with {spec['factors']} factors and {spec['iterations']} ALS "
            f"iterations, saved, logged with log_pyfunc and registered as champion in its own "
            f"MLflow store. Build: generate {t['generate_seconds']} s, fit {t['fit_seconds']} s, "
            f"save and register {t['save_and_register_seconds']} s (reused when built before).",
            "",
        ]
    server = figures.get("server") or {}
    if server:
        lines += [
            "## The server process (`recomart serve`)",
            "",
            "| start to /health ready s | loader s | peak RSS GB (VmHWM) | RSS at ready GB | "
            "RSS after the runs GB |",
            "|---:|---:|---:|---:|---:|",
            f"| {server.get('start_to_ready_seconds')} | {server.get('loader_seconds')} | "
            f"{server.get('peak_rss_gb')} | {server.get('rss_gb_at_ready')} | "
            f"{server.get('rss_gb')} |",
            "",
            f"Targets: ready < {TARGET_START_SECONDS:g} s, peak RSS < {TARGET_RSS_GB:g} GB.",
            "",
        ]
    lines += [
        "## In process",
        "",
        "| call | calls | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|---:|",
        f"| ServingModel.recommend (the API's path) | {s['calls']} | {s['p50_ms']} | "
        f"{s['p99_ms']} | {s['mean_ms']} |",
    ]
    names = {"model": "known users (model)", "blend": "few interactions (blend)",
             "popular": "unknown users (popular)"}  # fmt: skip
    for path, p in ip.get("serving_recommend_by_path", {}).items():
        lines.append(
            f"| ServingModel.recommend, {names[path]} | {p['calls']} | {p['p50_ms']} | "
            f"{p['p99_ms']} | {p['mean_ms']} |"
        )
    lines += [
        f"| model.recommend_items (scored per call) | {m['calls']} | {m['p50_ms']} | "
        f"{m['p99_ms']} | {m['mean_ms']} |",
        "",
        (f"Target p99 < {TARGET_P99_MS_IN_PROCESS} ms (precomputed lists). " if not scored else "")
        + f"Model load in the benchmark's process (download, read, build): "
        f"{ip['load_seconds']} s.",
        "",
    ]
    rules = ip.get("rules") or {}
    if rules:
        plain = rules["plain"]
        lines += [
            f"### Business rules (models_ml.rules), {ip['n_items']:,} items",
            "",
            "The same users with and without rules (every item scored for the user, then the"
            " rules): what rules add to a request, p99 against the plain path's p99"
            f" (target: at most {TARGET_RULES_ADDED_P99_MS:g} ms more).",
            "",
            "| rules | calls | p50 ms | p99 ms | added p99 ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, p in rules.items():
            added = round(p["p99_ms"] - plain["p99_ms"], 3)
            label = "none (the plain path)" if name == "plain" else name
            lines.append(
                f"| {label} | {p['calls']} | {p['p50_ms']} | {p['p99_ms']} | "
                f"{'' if name == 'plain' else added} |"
            )
        lines.append("")
    lines += [
        "## HTTP on loopback (GET /recommendations/{user_id}?k=10, fixed rate)",
        "",
        "| target rps | connections | seconds | requests | achieved rps | errors | p50 ms | "
        "p95 ms | p99 ms | max ms | service p50 / p99 ms | server CPU ms / request | "
        "load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in figures["http"]:
        lines.append(
            f"| {r['target_rps']:g} | {r['concurrency']} | {r['duration_seconds']} | "
            f"{r['requests']} | {r['achieved_rps']} | {r['errors']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['service_p50_ms']} / "
            f"{r['service_p99_ms']} | {r.get('server_cpu_ms_per_request')} | "
            f"{r['load_average_1min_after']} |"
        )
    lines += [
        "",
        f"Target: p99 < {http_target:g} ms at 200 rps, zero errors. Latency counts from each "
        "request's due time (open model); client and server share the machine's cores. Load "
        f"average at the start {figures['load_average_at_start']} (1, 5, 15 min; other "
        "processes on the machine add to the tail). Service: from the request's write to its "
        "answer, without the load generator's own scheduling lateness. Server CPU: the server "
        "process's user + system CPU time over the run / requests (independent of other load).",
    ]
    return "\n".join(lines) + "\n"


def synthetic_home(cfg: config.Config, args: argparse.Namespace) -> tuple[config.Config, dict]:
    """Build (or reuse) the synthetic champion's home; cfg with its MLflow store, and what the
    build recorded."""
    from recomart.bench import synthetic_model

    spec = synthetic_model.Spec(
        n_users=args.synthetic_users,
        n_items=args.synthetic_items,
        n_interactions=args.synthetic_interactions or 20 * args.synthetic_users,
        factors=args.synthetic_factors,
        iterations=args.synthetic_iterations,
    )
    home = cfg.paths.home / SYNTHETIC_DIR / f"{spec.n_users}x{spec.n_items}"
    t = time.perf_counter()
    built = synthetic_model.build(
        home, spec, cfg.settings.train.model_name, cfg.settings.train.k, rebuild=args.rebuild
    )
    print(f"synthetic champion in {home} ({time.perf_counter() - t:.1f} s)", flush=True)
    bench_cfg = replace(cfg, paths=replace(cfg.paths, home=home, mlflow=home / "data" / "mlflow"))
    return bench_cfg, {**built, "home": str(home)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000, help="in-process calls")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per HTTP run")
    parser.add_argument("--rates", default="200", help="requests per second, comma-separated")
    parser.add_argument("--concurrency", default="1,8,32", help="connections, comma-separated")
    parser.add_argument("--k", type=int, default=10)
    synthetic = parser.add_argument_group("a synthetic champion instead of the project's")
    synthetic.add_argument("--synthetic-users", type=int, help="e.g. 500000")
    synthetic.add_argument("--synthetic-items", type=int, default=50_000)
    synthetic.add_argument(
        "--synthetic-interactions", type=int, help="generated rows (default 20 per user)"
    )
    synthetic.add_argument("--synthetic-factors", type=int, default=64)
    synthetic.add_argument("--synthetic-iterations", type=int, default=3, help="ALS iterations")
    synthetic.add_argument("--rebuild", action="store_true", help="build the model again")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    cfg = config.load()
    bench_cfg, built, env, log, name = cfg, None, None, None, "bench_serve"
    if args.synthetic_users:
        bench_cfg, built = synthetic_home(cfg, args)
        # the server: the same configuration file, the synthetic home (its MLflow store)
        env = {**os.environ, "RECOMART_HOME": str(bench_cfg.paths.home)}
        env.setdefault("RECOMART_CONFIG", str(config.PROJECT_ROOT / "recomart.toml"))
        log = bench_cfg.paths.home / "serve.log"
        name = "bench_serve_synthetic"
    ip, user_ids = in_process(bench_cfg, args.calls, args.k)
    print(json.dumps(ip, indent=2), flush=True)
    rates = [float(r) for r in args.rates.split(",")]
    levels = [int(c) for c in args.concurrency.split(",")]
    figures = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "command": "python -m recomart.bench.serve " + " ".join(argv or sys.argv[1:]),
        "synthetic": built,
        "in_process": ip,
    }
    figures["http"], figures["server"] = over_http(
        user_ids, rates, levels, args.duration, args.k, env, log
    )
    print(json.dumps(figures["server"]), flush=True)
    cfg.paths.reports.mkdir(parents=True, exist_ok=True)
    (cfg.paths.reports / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    text = markdown(figures)
    (cfg.paths.reports / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
