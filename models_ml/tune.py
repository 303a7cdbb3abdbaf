"""Hyperparameter search on a validation split carved from the training period only.

The holdout (the last holdout_days) is set aside first and never looked at; the rows before it
are split again by time: the last tune.validation_days of them validate, the rest fit. Each
trial draws one point of the grid [train.tune.space] (seeded, without repetition), fits the
recommender and scores NDCG@K on the validation users. The log of every trial and the best
parameters go to <paths.reports>/tuning.json and to one MLflow run in the experiment
"recomart-tuning"; copy the best values into recomart.toml [train] to use them.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from models_ml.baselines import PopularityRecommender
from models_ml.data import read_marts
from models_ml.evaluate import evaluate
from models_ml.split import time_split
from models_ml.tracking import use_experiment
from models_ml.train import build_model
from recomart import config

EXPERIMENT = "recomart-tuning"
REPORT_FILE = "tuning.json"


def grid(space: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the space's values, in a fixed order."""
    keys = sorted(space)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(space[k] for k in keys))
    ]


def sample(space: dict[str, list], n_trials: int, seed: int) -> list[dict[str, Any]]:
    """n_trials distinct grid points drawn with the seed (the whole grid if it is smaller)."""
    points = grid(space)
    if n_trials >= len(points):
        return points
    chosen = np.random.default_rng(seed).choice(len(points), size=n_trials, replace=False)
    return [points[i] for i in sorted(chosen)]


def run_tuning(cfg: config.Config | None = None) -> dict[str, Any]:
    """Search, record and return {metric, validation_cutoff, trials, best, best_params, ...}."""
    cfg = cfg or config.load()
    train_cfg = cfg.train
    tune_cfg = train_cfg.get("tune", {})
    k = train_cfg["k"]
    metric = f"ndcg_at_{k}"
    marts = read_marts(cfg.paths.warehouse)
    holdout = time_split(marts.interactions, train_cfg["holdout_days"])
    validation = time_split(
        holdout.train, tune_cfg.get("validation_days", train_cfg["holdout_days"])
    )
    if validation.train.empty or validation.test.empty:
        raise ValueError("the training period is too short to carve a validation split from")
    min_rating = train_cfg["min_relevant_rating"]
    baseline = evaluate(
        PopularityRecommender().fit(validation.train),
        validation.train,
        validation.test,
        k,
        min_rating,
    )[metric]

    trials = []
    for number, point in enumerate(
        sample(tune_cfg["space"], tune_cfg.get("n_trials", 16), train_cfg["seed"])
    ):
        started = time.perf_counter()
        model = build_model({**train_cfg, **point}).fit(validation.train, marts.catalog)
        fit_seconds = time.perf_counter() - started
        scores = evaluate(model, validation.train, validation.test, k, min_rating)
        trials.append(
            {
                "trial": number,
                "params": point,
                metric: scores[metric],
                f"precision_at_{k}": scores[f"precision_at_{k}"],
                "fit_seconds": fit_seconds,
            }
        )
    best = max(trials, key=lambda t: (t[metric], -t["trial"]))
    result = {
        "metric": metric,
        "holdout_cutoff": holdout.cutoff.isoformat(),
        "validation_cutoff": validation.cutoff.isoformat(),
        "n_validation_fit_rows": len(validation.train),
        "n_validation_rows": len(validation.test),
        "popularity_baseline": baseline,
        "trials": trials,
        "best": best,
        "best_params": best["params"],
        "toml": "\n".join(f"{key} = {json.dumps(value)}" for key, value in best["params"].items()),
    }
    report = Path(cfg.paths.reports) / REPORT_FILE
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result, indent=2) + "\n")

    experiment_id = use_experiment(cfg.paths.mlflow, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({f"best_{key}": value for key, value in best["params"].items()})
        mlflow.log_params(
            {"validation_cutoff": result["validation_cutoff"], "n_trials": len(trials)}
        )
        for trial in trials:
            mlflow.log_metric(f"validation_{metric}", trial[metric], step=trial["trial"])
        mlflow.log_metrics(
            {f"best_validation_{metric}": best[metric], f"popularity_validation_{metric}": baseline}
        )
        mlflow.log_dict(result, REPORT_FILE)
        result["run_id"] = run.info.run_id
    result["report"] = str(report)
    return result
