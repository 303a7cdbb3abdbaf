"""The evaluation protocol: a time holdout, warm users for personalisation, cold users apart.

- Warm users: present in train with at least one relevant test item. Their relevant items:
  test items they did not have in train, with a rating >= min_rating. Recommendations exclude
  their train items. This is the headline (the "als" / "popularity" / "recent_popularity" rows).
- Cold users: absent from train, with at least one test item (rating >= min_rating); every
  test item is relevant. Scored separately: what a new visitor gets (recent popularity for the
  model).
- Ratings: the biased baseline (models_ml.rating) fitted on observed train ratings, RMSE and MAE
  on the observed (not imputed) test ratings; the global mean as a reference.
Metrics at k (models_ml.metrics): precision, recall, NDCG, MAP, hit rate, catalog coverage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from models_ml.metrics import (
    catalog_coverage_at_k,
    hits_at_k,
    mae,
    mean_metrics_at_k,
    metrics_from_hits,
    rmse,
)
from models_ml.rating import PREDICTOR, BiasedBaseline
from recomart.schema import ITEM, RATING, USER

IS_IMPUTED = "is_rating_imputed"


class Recommender(Protocol):
    def recommend_batch(
        self, user_ids: Sequence[int] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]: ...


def _group(pairs: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    pairs = pairs.sort_values([USER, ITEM])
    users = pairs[USER].to_numpy(dtype=np.int64)
    items = pairs[ITEM].to_numpy(dtype=np.int64)
    user_ids, starts = np.unique(users, return_index=True)
    return user_ids, np.split(items, starts[1:]) if len(items) else []


def relevant_items(
    train: pd.DataFrame, test: pd.DataFrame, min_rating: float = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Warm users: sorted ids of the evaluated users and, per user, their relevant item ids."""
    pairs = test.loc[test[RATING] >= min_rating, [USER, ITEM]].drop_duplicates()
    pairs = pairs[pairs[USER].isin(train[USER].unique())]
    seen = train[[USER, ITEM]].drop_duplicates()
    pairs = pairs.merge(seen, on=[USER, ITEM], how="left", indicator=True)
    return _group(pairs[pairs["_merge"] == "left_only"])


def cold_relevant_items(
    train: pd.DataFrame, test: pd.DataFrame, min_rating: float = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Cold users (not in train): sorted ids and, per user, all their test item ids."""
    pairs = test.loc[test[RATING] >= min_rating, [USER, ITEM]].drop_duplicates()
    return _group(pairs[~pairs[USER].isin(train[USER].unique())])


def score_users(
    recommender: Recommender,
    user_ids: np.ndarray,
    relevant: list[np.ndarray],
    k: int,
    n_catalog_items: int | None = None,
) -> dict[str, float]:
    """Metrics at k for these users, catalog_coverage_at_<k> when n_catalog_items is given."""
    recommended, _ = recommender.recommend_batch(user_ids, k, exclude_known=True)
    out = {**mean_metrics_at_k(recommended, relevant, k), "n_users": len(user_ids)}
    if n_catalog_items:
        out[f"catalog_coverage_at_{k}"] = catalog_coverage_at_k(recommended, n_catalog_items, k)
    return out


def evaluate(
    recommender: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    min_rating: float = 0,
    n_catalog_items: int | None = None,
) -> dict[str, float]:
    """Warm-user metrics at k: precision, recall, ndcg, map, hit_rate (and catalog coverage).

    Keys: <metric>_at_<k>, n_users. Recommendations exclude the items each user had in train.
    """
    user_ids, relevant = relevant_items(train, test, min_rating)
    if len(user_ids) == 0:
        raise ValueError("no user of the test period has a relevant item: nothing to evaluate")
    return score_users(recommender, user_ids, relevant, k, n_catalog_items)


def evaluate_cold(
    recommender: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    min_rating: float = 0,
    n_catalog_items: int | None = None,
) -> dict[str, float] | None:
    """Cold-user metrics at k, or None when the test period has no new user."""
    user_ids, relevant = cold_relevant_items(train, test, min_rating)
    if len(user_ids) == 0:
        return None
    return score_users(recommender, user_ids, relevant, k, n_catalog_items)


def metrics_curve(
    recommender: Recommender, user_ids: np.ndarray, relevant: list[np.ndarray], max_k: int
) -> dict[str, list[float]]:
    """{metric: [value at K = 1 .. max_k]} from one top-max_k list per user (a prefix is top-K)."""
    recommended, _ = recommender.recommend_batch(user_ids, max_k, exclude_known=True)
    hits = hits_at_k(recommended, relevant, max_k)
    n_relevant = np.array([len(items) for items in relevant], dtype=np.float64)
    curve: dict[str, list[float]] = {}
    for k in range(1, max_k + 1):
        for name, value in metrics_from_hits(hits, n_relevant, k).items():
            curve.setdefault(name.removesuffix(f"_at_{k}"), []).append(value)
    return curve


def rating_metrics(train: pd.DataFrame, test: pd.DataFrame, reg: float = 5.0) -> dict:
    """RMSE/MAE on observed test ratings of the biased baseline and of the global train mean."""
    observed_train = train[~train[IS_IMPUTED]] if IS_IMPUTED in train else train
    observed_test = test[~test[IS_IMPUTED]] if IS_IMPUTED in test else test
    if observed_train.empty or observed_test.empty:
        return {"predictor": PREDICTOR, "n_ratings": 0}
    model = BiasedBaseline(reg_user=reg, reg_item=reg).fit(observed_train)
    actual = observed_test[RATING].to_numpy(dtype=np.float64)
    predicted = model.predict(
        observed_test[USER].to_numpy(dtype=np.int64), observed_test[ITEM].to_numpy(dtype=np.int64)
    )
    mean = np.full(len(actual), model.mu)
    return {
        "predictor": PREDICTOR,
        "n_ratings": len(actual),
        "rmse": rmse(predicted, actual),
        "mae": mae(predicted, actual),
        "global_mean_rmse": rmse(mean, actual),
        "global_mean_mae": mae(mean, actual),
    }
