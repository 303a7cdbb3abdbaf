"""`make tune`: choose the model family and its parameters on validation folds inside the
training period.

The holdout of [train.evaluation] (the one training uses, models_ml.split.holdout) is set aside
first and never looked at. Its training part is split again the same way (same strategy, and
for "auto" the same rule on the same min_eval_users) into a fit part and a validation part:
that is fold 1. Fold 2 splits fold 1's fit part the same way, and so on for [train.tune] folds
(rolling origins: each validation window is older than the last; a fold with no fit or
validation rows ends the list). `validation_days`, when set, replaces holdout_days for the folds.

models_ml.selection searches [train.tune.space.<family>] for each family named there and picks
the best mean NDCG@K over the folds. The log of every trial and the choice go to
<paths.reports>/tuning.json and to one MLflow run in the experiment "recomart-tuning"; copy the
`toml` lines of the report into recomart.toml [train] to use them (family included).
"""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from models_ml.baselines import PopularityRecommender
from models_ml.data import read_training_data
from models_ml.evaluate import evaluate
from models_ml.families import DENSE
from models_ml.selection import Fold, select, validation_ndcg
from models_ml.split import Split, holdout
from models_ml.tracking import use_experiment
from models_ml.train import build_model
from recomart.core import config
from recomart.core.schema import USER
from recomart.core.settings import Evaluation, Train
from recomart.features import FeatureStore

log = logging.getLogger("tuning")

EXPERIMENT = "recomart-tuning"
REPORT_FILE = "tuning.json"


def with_point(train: Train, point: dict[str, Any]) -> Train:
    """The [train] section with a candidate's values, validated like the file's."""
    return Train.model_validate({**train.model_dump(), **point})


def rolling_folds(rows, settings: Evaluation, n_folds: int, min_rating: float) -> list[Split]:
    """Up to n_folds splits: the first of `rows`, each next one of the previous fit part."""
    splits: list[Split] = []
    part = rows
    for _ in range(n_folds):
        split = holdout(part, settings, min_rating)
        if split.train.empty or split.test.empty:
            break
        splits.append(split)
        part = split.train
    return splits


class TooSmallToTune(ValueError):
    """No validation fold fits in the training period."""


def user_sample(rows: pd.DataFrame, max_users: int | None, seed: int) -> pd.DataFrame:
    """The rows of a seeded sample of max_users users (all rows when there are fewer users)."""
    users = pd.unique(rows[USER])
    if max_users is None or len(users) <= max_users:
        return rows
    keep = np.random.default_rng(seed).choice(users, max_users, replace=False)
    return rows[np.isin(rows[USER].to_numpy(), keep)]


def fitting(
    spaces: dict[str, dict[str, list]], n_items: int, ease_max_items: int
) -> tuple[dict[str, dict[str, list]], dict[str, str]]:
    """The search spaces of the families that can fit a catalog of n_items, and why the others
    are left out (the dense item-item families above ease_max_items)."""
    skipped = {
        family: f"{n_items} items, above [train] ease_max_items = {ease_max_items}"
        for family in spaces
        if family in DENSE and n_items > ease_max_items
    }
    return {f: space for f, space in spaces.items() if f not in skipped}, skipped


def run_tuning(cfg: config.Config | None = None) -> dict[str, Any]:
    """Search, record and return {metric, holdout, validation, folds, trials, best_by_family,
    best, best_params, popularity_baseline, toml, run_id, report}.

    holdout, validation (fold 1) and folds: each split's strategy, params, reason, cutoff (None
    for leave-last-n) and reference time (models_ml.split.Split.info). A trial: {trial,
    family, params, mean (NDCG@K over the folds), std, per_fold, seconds}.
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
    searched = user_sample(test_split.train, tune.max_users, train.seed)
    splits = rolling_folds(searched, settings, tune.folds, min_rating)
    if not splits:
        raise TooSmallToTune("the training part is too small to carve a validation split from")
    folds = [Fold(split.train, split.test) for split in splits]
    baseline = statistics.fmean(
        evaluate(PopularityRecommender().fit(f.train), f.train, f.validation, k, min_rating)[metric]
        for f in folds
    )
    rating_max = cfg.settings.ratings.max
    fit_and_score = validation_ndcg(
        lambda point: build_model(with_point(train, point), rating_max),
        k,
        min_rating,
        catalog=marts.catalog,
    )
    spaces, skipped = fitting(tune.space, len(marts.items), train.ease_max_items)
    for family, reason in skipped.items():
        log.info("%s not searched: %s", family, reason)
    chosen = select(folds, spaces, fit_and_score, tune.n_trials, train.seed)
    best = chosen["best"]
    first = splits[0]
    result = {
        "metric": metric,
        "holdout_cutoff": test_split.info()["cutoff"],
        "validation_cutoff": first.info()["cutoff"],
        "holdout": test_split.info(),
        "validation": first.info(),
        "folds": [split.info() for split in splits],
        "n_validation_users": evaluate(
            PopularityRecommender().fit(first.train), first.train, first.test, k, min_rating
        )["n_users"],
        "n_validation_fit_rows": len(first.train),
        "n_validation_rows": len(first.test),
        "popularity_baseline": baseline,
        "skipped": skipped,
        "n_search_users": int(searched[USER].nunique()),
        "n_train_users": int(test_split.train[USER].nunique()),
        **chosen,
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
                "validation_strategy": first.strategy,
                "n_folds": len(folds),
                "n_validation_users": result["n_validation_users"],
                "n_trials": len(chosen["trials"]),
            }
        )
        if first.cutoff is not None:
            mlflow.log_param("validation_cutoff", result["validation_cutoff"])
        for trial in chosen["trials"]:
            mlflow.log_metric(f"validation_{metric}", trial["mean"], step=trial["trial"])
        for family, trial in chosen["best_by_family"].items():
            mlflow.log_metric(f"best_{family}_validation_{metric}", trial["mean"])
        mlflow.log_metrics(
            {f"best_validation_{metric}": best["mean"], f"popularity_validation_{metric}": baseline}
        )
        mlflow.log_dict(result, REPORT_FILE)
        result["run_id"] = run.info.run_id
    result["report"] = str(report)
    return result
