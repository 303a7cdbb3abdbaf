"""Choosing the model family and its parameters on validation data only, robust to noise.

Every candidate (a family and a point of its search space) is fitted on the training part of each
fold and scored (NDCG@K, warm users, train items excluded) on the fold's validation part; the
mean over the folds ranks the candidates, so one lucky split does not pick the model. The
folds come from the caller: rolling time windows inside the training period for the pipeline
(models_ml.tune), repeated stratified splits of the training part for the benchmark
(models_ml.bench_movielens). Never the test data.

Families are searched in FAMILIES order, each over its own space (every point of the grid, or
a seeded sample of n_trials points). The hybrid (EASE + ALS) starts from the best ALS and EASE
points found before it and searches its own space (its weight) on top. The chosen candidate
is the best mean; a tie goes to the family searched first (ALS, the scale model).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models_ml.evaluate import evaluate
from models_ml.families import FAMILIES


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


@dataclass(frozen=True)
class Fold:
    """One validation fold: fit on `train`, score on `validation`."""

    train: pd.DataFrame
    validation: pd.DataFrame


def _hybrid_start(best: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The best ALS and EASE points (their own keys), where the hybrid's search starts."""
    start: dict[str, Any] = {}
    for family in ("als", "ease"):
        if family in best:
            start.update(best[family]["params"])
    start.pop("family", None)
    return start


def select(
    folds: list[Fold],
    spaces: Mapping[str, Mapping[str, list]],
    fit_and_score: Callable[[dict[str, Any], Fold], float],
    n_trials: int,
    seed: int,
) -> dict[str, Any]:
    """Search the families of `spaces` ({family: {setting: [values]}}) over the folds.

    fit_and_score(point, fold) fits the candidate of point ({"family": ..., settings}) on
    fold.train and returns its validation NDCG. Returns {trials: [{family, params, mean, std,
    per_fold, fit_seconds}], best_by_family: {family: trial}, best: trial}.
    """
    unknown = [family for family in spaces if family not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}: choose from {FAMILIES}")
    if not folds:
        raise ValueError("no validation fold to select on")
    trials: list[dict[str, Any]] = []
    best: dict[str, dict[str, Any]] = {}
    for family in (f for f in FAMILIES if f in spaces):
        start = _hybrid_start(best) if family == "hybrid" else {}
        for point in sample(dict(spaces[family]), n_trials, seed):
            params = {**start, **point, "family": family}
            started = time.perf_counter()
            per_fold = [float(fit_and_score(params, fold)) for fold in folds]
            trial = {
                "trial": len(trials),
                "family": family,
                "params": params,
                "mean": statistics.fmean(per_fold),
                "std": float(np.std(per_fold)),
                "per_fold": per_fold,
                "seconds": time.perf_counter() - started,
            }
            trials.append(trial)
            if family not in best or trial["mean"] > best[family]["mean"]:
                best[family] = trial
    chosen = max(best.values(), key=lambda t: (t["mean"], -FAMILIES.index(t["family"])))
    return {"trials": trials, "best_by_family": best, "best": chosen}


def validation_ndcg(
    make: Callable[[dict[str, Any]], Any], k: int, min_rating: float = 0, **fit_kwargs: Any
) -> Callable[[dict[str, Any], Fold], float]:
    """fit_and_score for select: make(params) builds a recommender, fitted on fold.train (with
    fit_kwargs, e.g. the catalog) and scored by NDCG@k on fold.validation."""

    def fit_and_score(params: dict[str, Any], fold: Fold) -> float:
        model = make(params).fit(fold.train, **fit_kwargs)
        return evaluate(model, fold.train, fold.validation, k, min_rating)[f"ndcg_at_{k}"]

    return fit_and_score
