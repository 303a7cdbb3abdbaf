"""What folding in fresh events (POST /events) adds to a recommendations request: p50 and p99 of
GET /recommendations/{user_id} through the real app (FastAPI's TestClient, in process: no
sockets) for users without fresh events (the precomputed list), the same users through the
rules path without events (POST /recommendations with a rule that changes nothing), and with 5
and 50 fresh events (the fold-in: one user's least-squares solve or x_u @ W, then the rules).

    python -m recomart.bench.fresh [--users 20000] [--items 5000] [--interactions 300000]
        [--families als,ease] [--requests 1000]

The model is synthetic_model's shop (UUID users, SKU items, views / carts / purchases / returns),
fitted here; nothing is saved. Prints one line per family and case."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from models_ml import families
from models_ml.ids import Vocabulary
from recomart.bench import synthetic_model
from recomart_core import config
from recomart_core.rulesets import load_rule_set
from recomart_core.schema import ITEM
from serving.app import create_app
from serving.holder import FixedSource, ModelHolder
from serving.settings import ServeSettings
from serving.snapshot import ModelInfo, ServingModel
from serving.spool import Spool

INFO = ModelInfo(name="bench", version="1", alias="champion", run_id=None, trained_at=None,
                 data_cutoff=None, holdout_cutoff=None)  # fmt: skip
K = 10
ONE_RULE = {"exclude_item_ids": ["-"]}  # a rule that changes nothing: the rules path


def timed(client: TestClient, requests: list[tuple[str, str, dict]]) -> np.ndarray:
    """Milliseconds of each request (method, url, json body or query)."""
    out = np.empty(len(requests))
    for n, (method, url, payload) in enumerate(requests):
        started = time.perf_counter()
        if method == "GET":
            response = client.get(url, params=payload)
        else:
            response = client.post(url, json=payload)
        out[n] = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text
    return out


def run(args: argparse.Namespace) -> None:
    spec = synthetic_model.Spec(args.users, args.items, args.interactions, factors=32)
    rows, catalog, users, items = synthetic_model.interactions(spec)
    shop = catalog.assign(**{ITEM: Vocabulary(items).decode(catalog[ITEM])})
    rng = np.random.default_rng(1)
    for family in args.families.split(","):
        started = time.perf_counter()
        model = families.from_flat(
            family=family, n_factors=32, iterations=5, ease_l2=500.0, seed=1
        ).fit(rows, catalog, users=Vocabulary(users), items=Vocabulary(items))
        served = ServingModel(model, shop, INFO, max_k=100)
        fit = time.perf_counter() - started
        home = Path(tempfile.mkdtemp(prefix="bench-fresh-"))
        settings = ServeSettings(poll_seconds=0)
        holder = ModelHolder(FixedSource(served), settings)
        rule_set = load_rule_set(config.PROJECT_ROOT / "rules.toml")  # home: no rules
        app = create_app(config.load(), settings, holder, rule_set, Spool(home / "events"))
        chosen = rng.choice(served.user_ids, args.requests, replace=False)
        listable = served.table.item_ids
        with TestClient(app) as client:
            for user in chosen[: args.requests // 2]:  # half of them get fresh events
                client.post("/events", json=[
                    {"user_id": str(user), "item_id": str(item), "event_type": "view"}
                    for item in rng.choice(listable, 5, replace=False)
                ])  # fmt: skip
            fresh5 = chosen[: args.requests // 2]
            plain = chosen[args.requests // 2 :]
            for user in fresh5[:100]:  # a hundred of them with 50
                client.post("/events", json=[
                    {"user_id": str(user), "item_id": str(item), "event_type": "view"}
                    for item in rng.choice(listable, 45, replace=False)
                ])  # fmt: skip
            cases = {
                "no events, precomputed (GET)": [
                    ("GET", f"/recommendations/{u}", {"k": K}) for u in plain
                ],
                "no events, rules path (POST)": [
                    ("POST", "/recommendations", {"user_id": str(u), "n": K, **ONE_RULE})
                    for u in plain
                ],
                "5 fresh events (GET)": [
                    ("GET", f"/recommendations/{u}", {"k": K}) for u in fresh5[100:]
                ],
                "50 fresh events (GET)": [
                    ("GET", f"/recommendations/{u}", {"k": K}) for u in fresh5[:100]
                ],
            }
            timed(client, cases["no events, precomputed (GET)"][:50])  # warm up
            print(f"{family}: {args.users} users, {args.items} items, fit {fit:.1f} s")
            for name, requests in cases.items():
                ms = timed(client, requests)
                print(
                    f"  {name:32s} n={len(ms):4d}  p50 {np.percentile(ms, 50):6.2f} ms"
                    f"  p99 {np.percentile(ms, 99):6.2f} ms"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--interactions", type=int, default=300_000)
    parser.add_argument("--families", default="als,ease")
    parser.add_argument("--requests", type=int, default=1000)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
