"""Hyperparameter search on a validation split carved from the training part only.

The holdout of [train.evaluation] (the one training uses, models_ml.split.holdout) is set aside
first and never looked at; its training part is split again the same way (same strategy, and
for "auto" the same rule on the same min_eval_users) into a fit part and a validation part. The
one difference: `[train.tune] validation_days`, when set, replaces holdout_days for that second
split (last_days, or auto's first choice). Each
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
from models_ml.data import read_training_data
from models_ml.evaluate import evaluate
from models_ml.split import holdout
from models_ml.tracking import use_experiment
from models_ml.train import build_model
from recomart.core import config
from recomart.core.settings import Train
from recomart.features import FeatureStore

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


def with_point(train: Train, point: dict[str, Any]) -> Train:
    """The [train] section with a grid point's values, validated like the file's."""
    return Train.model_validate({**train.model_dump(), **point})


def run_tuning(cfg: config.Config | None = None) -> dict[str, Any]:
    """Search, record and return {metric, holdout, validation, trials, best, best_params, ...}.

    holdout and validation: each split's strategy, params, reason, cutoff (None for
    leave-last-n) and reference time (models_ml.split.Split.info).
    """
    cfg = cfg or config.load()
    train = cfg.settings.train
    tune = train.tune
    k = train.k
    metric = f"ndcg_at_{k}"
    settings = train.evaluation
    min_rating = train.min_relevant_rating
    marts = read_training_data(FeatureStore(cfg))
    test_split = holdout(marts.interactions, settings, min_rating)
    if tune.validation_days:  # validated with the settings (recomart.core.settings)
        settings = settings.with_holdout_days(tune.validation_days)
    validation = holdout(test_split.train, settings, min_rating)
    if validation.train.empty or validation.test.empty:
        raise ValueError("the training part is too small to carve a validation split from")
    baseline_scores = evaluate(
        PopularityRecommender().fit(validation.train),
        validation.train,
        validation.test,
        k,
        min_rating,
    )
    baseline = baseline_scores[metric]

    trials = []
    for number, point in enumerate(sample(tune.space, tune.n_trials, train.seed)):
        started = time.perf_counter()
        model = build_model(with_point(train, point), cfg.settings.ratings.max).fit(
            validation.train, marts.catalog
        )
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
        "holdout_cutoff": test_split.info()["cutoff"],
        "validation_cutoff": validation.info()["cutoff"],
        "holdout": test_split.info(),
        "validation": validation.info(),
        "n_validation_users": baseline_scores["n_users"],
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
            {
                "holdout_strategy": test_split.strategy,
                "validation_strategy": validation.strategy,
                "n_validation_users": result["n_validation_users"],
                "n_trials": len(trials),
            }
        )
        if validation.cutoff is not None:
            mlflow.log_param("validation_cutoff", result["validation_cutoff"])
        for trial in trials:
            mlflow.log_metric(f"validation_{metric}", trial[metric], step=trial["trial"])
        mlflow.log_metrics(
            {f"best_validation_{metric}": best[metric], f"popularity_validation_{metric}": baseline}
        )
        mlflow.log_dict(result, REPORT_FILE)
        result["run_id"] = run.info.run_id
    result["report"] = str(report)
    return result
