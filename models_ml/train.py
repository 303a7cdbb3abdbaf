"""One training run: read the marts, split by time, fit ALS and the popularity baseline,
evaluate both on the same holdout, log everything to MLflow, save the model and a report.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from models_ml.baselines import PopularityRecommender
from models_ml.data import Marts, read_marts
from models_ml.evaluate import evaluate
from models_ml.pyfunc import log_pyfunc
from models_ml.recommender import MatrixFactorizationRecommender
from models_ml.split import time_split
from models_ml.tracking import tracking_uri, use_experiment
from recomart import config
from recomart.schema import ITEM, USER

MODEL_DIR = "als"  # the last trained model: <paths.models>/als
RUN_FILE = "training.json"  # inside the model directory: the run that produced it
REPORT_FILE = "train_metrics.json"  # <paths.reports>/train_metrics.json
MODEL_ARTIFACTS = "model"  # run artifact folder holding the saved model directory
PYFUNC_NAME = "recommender"  # name of the logged pyfunc model


@dataclass
class Outcome:
    """A fitted model and what its evaluation found."""

    model: MatrixFactorizationRecommender
    cutoff: str
    metrics: dict[str, dict[str, float]]  # "als" / "popularity" -> evaluate() output
    sizes: dict[str, int]
    timings: dict[str, float]


def hyperparameters(train_cfg: dict[str, Any]) -> dict[str, Any]:
    """The [train] section flattened for MLflow: event_weights.view -> event_weight_view."""
    flat = {key: value for key, value in train_cfg.items() if key != "event_weights"}
    flat.update({f"event_weight_{event}": w for event, w in train_cfg["event_weights"].items()})
    return flat


def build_model(train_cfg: dict[str, Any]) -> MatrixFactorizationRecommender:
    """A MatrixFactorizationRecommender configured from the [train] section."""
    return MatrixFactorizationRecommender(
        n_factors=train_cfg["factors"],
        iterations=train_cfg["iterations"],
        regularization=train_cfg["regularization"],
        alpha=train_cfg["alpha"],
        event_weights=train_cfg["event_weights"],
        seed=train_cfg["seed"],
    )


def fit_and_evaluate(marts: Marts, train_cfg: dict[str, Any]) -> Outcome:
    """Split by time, fit ALS and popularity on train, evaluate both on the same holdout."""
    k = train_cfg["k"]
    split = time_split(marts.interactions, train_cfg["holdout_days"])
    if split.train.empty or split.test.empty:
        raise ValueError(f"holdout at {split.cutoff} leaves an empty train or test set")

    t0 = time.perf_counter()
    model = build_model(train_cfg).fit(split.train)
    fit_seconds = time.perf_counter() - t0
    baseline = PopularityRecommender().fit(split.train)

    t0 = time.perf_counter()
    min_rating = train_cfg["min_relevant_rating"]
    metrics = {
        "als": evaluate(model, split.train, split.test, k, min_rating),
        "popularity": evaluate(baseline, split.train, split.test, k, min_rating),
    }
    evaluate_seconds = time.perf_counter() - t0

    sizes = {
        "n_interactions": len(marts.interactions),
        "n_train_rows": len(split.train),
        "n_test_rows": len(split.test),
        "n_train_users": int(split.train[USER].nunique()),
        "n_train_items": int(split.train[ITEM].nunique()),
        "n_catalog_items": int(marts.catalog_item_ids.nunique()),
        "n_eval_users": metrics["als"]["n_users"],
    }
    timings = {"fit_seconds": fit_seconds, "evaluate_seconds": evaluate_seconds}
    return Outcome(model, split.cutoff.isoformat(), metrics, sizes, timings)


def metric_values(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """{"als": {"ndcg_at_10": x}} -> {"als_ndcg_at_10": x}, without the n_users counts."""
    return {
        f"{name}_{metric}": value
        for name, values in metrics.items()
        for metric, value in values.items()
        if metric != "n_users"
    }


def save_model(model: MatrixFactorizationRecommender, models_dir: Path, run: dict) -> Path:
    """Save into <models_dir>/als through a staging folder, so no half-written model remains."""
    target = models_dir / MODEL_DIR
    staging = models_dir / f".{MODEL_DIR}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    (staging / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def run_training(cfg: config.Config | None = None) -> dict[str, Any]:
    """Train, evaluate and log one model in one MLflow run; return the summary also written to
    <paths.reports>/train_metrics.json.

    Summary keys: run_id, experiment_id, tracking_uri, holdout_cutoff, k, als and popularity
    (each {precision_at_<k>, recall_at_<k>, ndcg_at_<k>, n_users}), n_eval_users, sizes,
    timings (seconds), model_dir, model_uri (the logged pyfunc model), report.
    """
    started = time.perf_counter()
    cfg = cfg or config.load()
    paths, train_cfg = cfg.paths, cfg.train
    experiment_id = use_experiment(paths.mlflow)

    with mlflow.start_run(experiment_id=experiment_id) as run:
        run_id = run.info.run_id
        mlflow.log_params(hyperparameters(train_cfg))
        mlflow.set_tag("warehouse", str(paths.warehouse))
        marts = read_marts(paths.warehouse)
        outcome = fit_and_evaluate(marts, train_cfg)
        mlflow.log_params({"holdout_cutoff": outcome.cutoff, **outcome.sizes})
        mlflow.set_tags(
            {
                "training_rows": str(outcome.sizes["n_train_rows"]),
                "latest_load_id": str(marts.latest_load_id),
            }
        )
        mlflow.log_metrics(metric_values(outcome.metrics))

        timings = outcome.timings
        t0 = time.perf_counter()
        run_info = {"run_id": run_id, "holdout_cutoff": outcome.cutoff, "k": train_cfg["k"]}
        model_dir = save_model(outcome.model, paths.models, run_info)
        mlflow.log_artifacts(str(model_dir), artifact_path=MODEL_ARTIFACTS)
        timings["save_and_log_artifacts_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        example_users = [int(outcome.model.user_ids[0])]
        model_uri = log_pyfunc(model_dir, train_cfg["k"], example_users, name=PYFUNC_NAME)
        timings["log_pyfunc_seconds"] = time.perf_counter() - t0
        mlflow.log_metrics(timings)

    timings["total_seconds"] = time.perf_counter() - started
    report = Path(paths.reports) / REPORT_FILE
    summary = {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "tracking_uri": tracking_uri(paths.mlflow),
        "holdout_cutoff": outcome.cutoff,
        "k": train_cfg["k"],
        **outcome.metrics,  # "als" and "popularity"
        "n_eval_users": outcome.sizes["n_eval_users"],
        "sizes": outcome.sizes,
        "timings": timings,
        "model_dir": str(model_dir),
        "model_uri": model_uri,
        "report": str(report),
    }
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
