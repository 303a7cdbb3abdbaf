"""A champion of real-shop size for `make bench-serve`, without running the pipeline at that size.

`build(home, n_users, n_items, ...)`:
1. generates a shop's interaction log: string user ids like a shop's customer ids (UUIDs),
   SKU-like item ids, users' activity log-normal (about a fifth have at most 3 items: the
   blend path), item popularity a power law (Zipf, exponent 1) over a shuffled catalog with
   categories and prices, a couple of percent of catalog items never seen (cold items), views,
   carts, purchases and a few returns (negative feedback) over 180 days;
2. fits the project's Recommender on it (the real fit: confidence matrix,
   BM25, implicit's ALS, cold start), with few ALS iterations (serving cost depends on the sizes,
   not on how converged the factors are);
3. saves it as a model package (models_ml.package) with its items file, logs it with the
   project's models_ml.pyfunc.log_pyfunc into an MLflow store of its own (SQLite under
   <home>/data/mlflow, never the project's store), registers it and gives it the champion alias
   (models_ml.registry.promote).

The home is a RECOMART_HOME: `recomart serve` started with RECOMART_HOME=<home> serves it. A
home already built with the same parameters is reused (its build.json says which).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recomart_core.schema import (
    ADD_TO_CART,
    CATEGORY,
    EVENT,
    ITEM,
    PRICE,
    PURCHASE,
    RETURN_EVENT,
    TIME,
    TITLE,
    USER,
    VIEW,
)

BUILD_FILE = "build.json"
GENERATOR_VERSION = 2  # a home built by another version is built again
N_CATEGORIES = 200
COLD_ITEM_SHARE = 0.02  # catalog items without interactions
ZIPF_EXPONENT = 1.0
ACTIVITY_SIGMA = 1.2  # log-normal spread of interactions per user
DAYS = 180


@dataclass(frozen=True)
class Spec:
    n_users: int
    n_items: int
    n_interactions: int
    factors: int = 64
    iterations: int = 3
    seed: int = 7


def shop_user_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct UUID strings (36 characters), as a shop's customer ids often are."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    ids = np.array([str(uuid.UUID(bytes=row.tobytes())) for row in raw], dtype=object)
    return ids if len(set(ids)) == n else shop_user_ids(n, rng)  # a collision: draw again


def shop_item_ids(n: int) -> np.ndarray:
    """n distinct SKU-like ids: '100000' .. and every seventh one with a letter ('100007A')."""
    numbers = np.arange(100_000, 100_000 + n).astype(str).astype(object)
    lettered = np.arange(n) % 7 == 0
    numbers[lettered] = numbers[lettered] + "A"
    return numbers


def interactions(spec: Spec) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """(interaction rows with int64 codes, catalog rows with codes, user names, item names);
    names[code] is the shop id of a code (codes are positions in the sorted names)."""
    rng = np.random.default_rng(spec.seed)
    user_names = np.sort(shop_user_ids(spec.n_users, rng).astype(str)).astype(object)
    item_names = np.sort(shop_item_ids(spec.n_items).astype(str)).astype(object)
    # users: log-normal activity scaled to the wanted total, at least one row each
    mean = spec.n_interactions / spec.n_users
    mu = np.log(mean) - ACTIVITY_SIGMA**2 / 2
    per_user = np.maximum(1, np.rint(rng.lognormal(mu, ACTIVITY_SIGMA, spec.n_users)))
    per_user = np.minimum(per_user, spec.n_items // 10).astype(np.int64)
    users = np.repeat(np.arange(spec.n_users, dtype=np.int64), per_user)
    # items: Zipf popularity over a shuffled catalog, the coldest few never interacted with
    n_warm = max(1, int(spec.n_items * (1 - COLD_ITEM_SHARE)))
    order = rng.permutation(spec.n_items)
    p = 1.0 / np.arange(1, n_warm + 1) ** ZIPF_EXPONENT
    items = order[rng.choice(n_warm, size=len(users), p=p / p.sum())].astype(np.int64)
    n = len(users)
    events = rng.choice(
        np.array([VIEW, ADD_TO_CART, PURCHASE, RETURN_EVENT], dtype=object),
        size=n,
        p=[0.8, 0.15, 0.045, 0.005],
    )
    start = pd.Timestamp("2026-05-01", tz="UTC")
    seconds = rng.integers(0, DAYS * 86_400, size=n)
    rows = pd.DataFrame(
        {
            USER: users,
            ITEM: items,
            EVENT: events,
            TIME: start + pd.to_timedelta(seconds, unit="s"),
        }
    )
    category = rng.integers(0, N_CATEGORIES, spec.n_items)
    catalog = pd.DataFrame(
        {
            ITEM: np.arange(spec.n_items, dtype=np.int64),
            TITLE: "Product " + pd.Series(item_names, dtype=object),
            CATEGORY: pd.Series(category).map(lambda c: f"category-{c:03d}").astype(object),
            PRICE: np.round(rng.lognormal(3.0, 1.0, spec.n_items), 2),
        }
    )
    return rows, catalog, user_names, item_names


def build(home: Path, spec: Spec, model_name: str, k: int, rebuild: bool = False) -> dict:
    """Make <home> a RECOMART_HOME whose registry's champion is a synthetic model of spec's
    size; return what build.json records (spec, timings, the registered version)."""
    home = Path(home)
    marker = home / BUILD_FILE
    if not rebuild and marker.is_file():
        built = json.loads(marker.read_text())
        if (
            built.get("spec") == asdict(spec)
            and built.get("model_name") == model_name
            and built.get("generator_version") == GENERATOR_VERSION
        ):
            return built
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    timings = {}

    t = time.perf_counter()
    rows, catalog, user_names, item_names = interactions(spec)
    timings["generate_seconds"] = round(time.perf_counter() - t, 1)

    from models_ml import families
    from models_ml.ids import Vocabulary
    from recomart_core import config

    train = config.load().settings.train
    t = time.perf_counter()
    als = {"factors": spec.factors, "iterations": spec.iterations}  # the synthetic model's size
    train = families.with_point(train, {f"als.{key}": value for key, value in als.items()})
    model = families.build(train).fit(
        rows, catalog, users=Vocabulary(user_names), items=Vocabulary(item_names)
    )
    timings["fit_seconds"] = round(time.perf_counter() - t, 1)
    n_rows = len(rows)
    del rows

    t = time.perf_counter()
    version = register(home, model, catalog, model_name, k, user_names[:3].tolist())
    timings["save_and_register_seconds"] = round(time.perf_counter() - t, 1)
    built = {
        "spec": asdict(spec),
        "generator_version": GENERATOR_VERSION,
        "model_name": model_name,
        "version": version,
        "interaction_rows": n_rows,
        "matrix_nnz": int(model.user_items.nnz),
        "users": len(model.user_ids),
        "items": len(model.item_ids),
        "timings": timings,
    }
    marker.write_text(json.dumps(built, indent=2) + "\n")
    return built


def register(
    home: Path, model, catalog: pd.DataFrame, model_name: str, k: int, example_users: list[str]
) -> str:
    """Save model as a package, log it with log_pyfunc into <home>/data/mlflow, register it
    under model_name and make it the champion; return the version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from models_ml import package
    from models_ml.pyfunc import log_pyfunc
    from models_ml.registry import promote
    from models_ml.tracking import tracking_uri, use_experiment

    mlflow_dir = home / "data" / "mlflow"
    staging = package.save(
        model, home / "data" / "models", {"run_id": None, "synthetic": True}, catalog
    )
    previous = mlflow.get_tracking_uri()
    try:
        experiment = use_experiment(mlflow_dir)
        with mlflow.start_run(experiment_id=experiment, run_name="synthetic-serving-bench"):
            mlflow.set_tag("synthetic", "true")
            _, version = log_pyfunc(staging, k, example_users, registered_model_name=model_name)
        promote(MlflowClient(tracking_uri(mlflow_dir)), model_name, version)
    finally:
        mlflow.set_tracking_uri(previous)
    package.discard(staging)
    return str(version)
