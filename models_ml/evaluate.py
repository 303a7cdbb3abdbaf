"""The evaluation protocol: a holdout (models_ml.split), warm users for personalisation, cold
users apart.

- Warm users: present in train with at least one relevant test item. Their relevant items:
  test items with a rating >= min_rating that the repeat policy lets be recommended to them
  ([train] repeatable_events, models_ml.matrix.excluded_pairs): by default items they did not
  have in train; with repeatable event types also the items they had only with those types.
  Recommendations exclude the same pairs. This is the headline (the "model" / "popularity" /
  "recent_popularity" / "repeat" rows).
- Cold users: absent from train, with at least one test item (rating >= min_rating); every
  test item is relevant. Scored separately: what a new visitor gets (recent popularity for the
  model).
- Ratings: the biased baseline (models_ml.rating) fitted on observed train ratings, RMSE and MAE
  on the observed (not imputed) test ratings; the global mean as a reference.
Metrics at k (models_ml.metrics): precision, recall, NDCG, MAP, hit rate; beyond accuracy,
catalog coverage, novelty and popularity bias (from the training rows' item popularity).
`evaluate_many` scores several recommenders on the same warm users with one top-N call each and
keeps every metric per user (Scores.per_user), which the champion gate's paired bootstrap needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from models_ml.arrays import unique_sorted
from models_ml.matrix import excluded_pairs, pair_keys, without_returns
from models_ml.metrics import (
    catalog_coverage_at_k,
    hits_at_k,
    item_popularity,
    mae,
    metrics_from_hits,
    novelty_at_k,
    per_user_from_hits,
    popularity_bias_at_k,
    rmse,
)
from models_ml.rating import PREDICTOR, BiasedBaseline
from recomart_core.schema import ITEM, RATING, USER

IS_IMPUTED = "is_rating_imputed"


class Recommender(Protocol):
    def recommend_batch(
        self, user_ids: Sequence[int] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]: ...


def _group(keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct pair keys -> sorted user ids and, per user, its sorted item ids."""
    keys = unique_sorted(keys)
    users, items = keys >> 32, keys & 0xFFFFFFFF
    user_ids, starts = np.unique(users, return_index=True)
    return user_ids, np.split(items, starts[1:]) if len(items) else []


def _relevant_keys(test: pd.DataFrame, min_rating: float) -> np.ndarray:
    """(user, item) keys of the test rows that count as relevant: not returns, and rated at
    least min_rating, or not rated at all (an implicit-feedback log)."""
    test = without_returns(test)
    ratings = test[RATING]
    keep = (ratings.isna() | (ratings >= min_rating)).to_numpy()
    return pair_keys(test[USER].to_numpy()[keep], test[ITEM].to_numpy()[keep])


def relevant_items(
    train: pd.DataFrame, test: pd.DataFrame, min_rating: float = 0, repeatable: Sequence[str] = ()
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Warm users: sorted ids of the evaluated users and, per user, their relevant item ids:
    test items the repeat policy lets the user be recommended (models_ml.matrix.excluded_pairs
    of the train rows with `repeatable`, [train] repeatable_events): with none repeatable, only
    items new to the user; with views repeatable, a re-viewed item too, unless the user also
    bought or returned it in train (purchases not repeatable). Whole arrays: pairs as int64
    keys, np.isin."""
    keys = _relevant_keys(test, min_rating)
    train_users = train[USER].to_numpy(dtype=np.int64)
    excluded = excluded_pairs(train, repeatable)
    seen = pair_keys(
        excluded[USER].to_numpy(dtype=np.int64), excluded[ITEM].to_numpy(dtype=np.int64)
    )
    warm = np.isin(keys >> 32, unique_sorted(train_users)) & ~np.isin(keys, seen)
    return _group(keys[warm])


def cold_relevant_items(
    train: pd.DataFrame, test: pd.DataFrame, min_rating: float = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Cold users (not in train): sorted ids and, per user, all their test item ids."""
    keys = _relevant_keys(test, min_rating)
    cold = ~np.isin(keys >> 32, unique_sorted(train[USER].to_numpy(dtype=np.int64)))
    return _group(keys[cold])


@dataclass
class Scores:
    """One recommender on a set of users, from one top-N list per user.

    metrics: means keyed <metric>_at_<k> (precision, recall, ndcg, map, hit_rate), n_users and,
    with a catalog size, catalog_coverage_at_<k>; user_ids: the scored users (sorted); per_user:
    the same metrics per user, aligned with user_ids (the gate's paired bootstrap reads
    ndcg_at_<k>); curve: {metric: [mean at K = 1 .. max_k]} when max_k was asked for.
    """

    metrics: dict[str, float]
    user_ids: np.ndarray
    per_user: dict[str, np.ndarray]
    curve: dict[str, list[float]] | None = None


@dataclass(frozen=True)
class Popularity:
    """The training rows' item popularity (models_ml.metrics.item_popularity): sorted item ids,
    the share of training users who have each, the number of training users."""

    items: np.ndarray
    shares: np.ndarray
    n_users: int

    @classmethod
    def of(cls, train: pd.DataFrame) -> Popularity:
        users = train[USER].to_numpy(dtype=np.int64)
        items, shares = item_popularity(users, train[ITEM].to_numpy(dtype=np.int64))
        return cls(items, shares, len(unique_sorted(users)))


def score_recommendations(
    recommended: np.ndarray,
    user_ids: np.ndarray,
    relevant: list[np.ndarray],
    k: int,
    n_catalog_items: int | None = None,
    max_k: int | None = None,
    popularity: Popularity | None = None,
) -> Scores:
    """Scores of (n_users, >= max(k, max_k)) recommended ids: metrics at k from each list's first
    k (a ranked list's prefix is its top k), the curve at K = 1 .. max_k from the same lists;
    with popularity, novelty_at_<k> and popularity_bias_at_<k> of the lists too."""
    depth = max(k, max_k or 0)
    hits = hits_at_k(recommended, relevant, depth)
    n_relevant = np.array([len(items) for items in relevant], dtype=np.float64)
    per_user = per_user_from_hits(hits, n_relevant, k)
    metrics: dict[str, float] = {name: float(np.mean(v)) for name, v in per_user.items()}
    metrics["n_users"] = len(user_ids)
    if n_catalog_items:
        metrics[f"catalog_coverage_at_{k}"] = catalog_coverage_at_k(recommended, n_catalog_items, k)
    if popularity is not None:
        pop = popularity
        metrics[f"novelty_at_{k}"] = novelty_at_k(
            recommended, pop.items, pop.shares, pop.n_users, k
        )
        metrics[f"popularity_bias_at_{k}"] = popularity_bias_at_k(
            recommended, pop.items, pop.shares, k
        )
    curve = None
    if max_k:
        curve = {}
        for at in range(1, max_k + 1):
            for name, value in metrics_from_hits(hits, n_relevant, at).items():
                curve.setdefault(name.removesuffix(f"_at_{at}"), []).append(value)
    return Scores(metrics, np.asarray(user_ids), per_user, curve)


def score_users(
    recommender: Recommender,
    user_ids: np.ndarray,
    relevant: list[np.ndarray],
    k: int,
    n_catalog_items: int | None = None,
    max_k: int | None = None,
    popularity: Popularity | None = None,
) -> Scores:
    """Scores of one recommender's top max(k, max_k) lists (one call) for these users."""
    recommended, _ = recommender.recommend_batch(user_ids, max(k, max_k or 0), exclude_known=True)
    return score_recommendations(
        recommended, user_ids, relevant, k, n_catalog_items, max_k, popularity
    )


def evaluate_many(
    recommenders: Mapping[str, Recommender],
    train: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    min_rating: float = 0,
    n_catalog_items: int | None = None,
    max_k: int | None = None,
    max_users: int | None = None,
    seed: int = 0,
    repeatable: Sequence[str] = (),
) -> dict[str, Scores]:
    """Warm-user Scores of every recommender on the same users, one top-N call each (metrics
    beyond accuracy included: novelty and popularity bias against the train rows).

    Recommendations exclude the items each user had in train, or with repeatable event types
    ([train] repeatable_events) those excluded_pairs keeps out: the recommenders must follow
    the same policy (their recommend_batch(exclude_known=True)). More warm users than
    max_users: a random sample of max_users of them (seeded: the same train and test give the
    same users). ValueError when no user of the test period has a relevant item.
    """
    user_ids, relevant = relevant_items(train, test, min_rating, repeatable)
    if len(user_ids) == 0:
        raise ValueError("no user of the test period has a relevant item: nothing to evaluate")
    if max_users is not None and len(user_ids) > max_users:
        kept = np.sort(np.random.default_rng(seed).choice(len(user_ids), max_users, replace=False))
        user_ids, relevant = user_ids[kept], [relevant[i] for i in kept]
    popularity = Popularity.of(train)
    return {
        name: score_users(rec, user_ids, relevant, k, n_catalog_items, max_k, popularity)
        for name, rec in recommenders.items()
    }


def evaluate(
    recommender: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    min_rating: float = 0,
    n_catalog_items: int | None = None,
    repeatable: Sequence[str] = (),
) -> dict[str, float]:
    """Warm-user metrics at k: precision, recall, ndcg, map, hit_rate (and catalog coverage).

    Keys: <metric>_at_<k>, n_users. Recommendations exclude the items each user had in train
    (or, with repeatable event types, what evaluate_many says).
    """
    scores = evaluate_many(
        {"model": recommender}, train, test, k, min_rating, n_catalog_items,
        repeatable=repeatable,
    )  # fmt: skip
    return scores["model"].metrics


def evaluate_cold(
    recommender: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    min_rating: float = 0,
    n_catalog_items: int | None = None,
) -> dict[str, float] | None:
    """Cold-user metrics at k, or None when the test period has no new user. Cold users have
    no train items, so the repeat policy changes nothing here: every test item is relevant."""
    user_ids, relevant = cold_relevant_items(train, test, min_rating)
    if len(user_ids) == 0:
        return None
    return score_users(recommender, user_ids, relevant, k, n_catalog_items).metrics


def _observed(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with an observed rating: not imputed, not null (an implicit log has none)."""
    keep = frame[RATING].notna()
    if IS_IMPUTED in frame:
        keep &= ~frame[IS_IMPUTED].astype(bool)
    return frame.loc[keep.to_numpy()]


def rating_metrics(train: pd.DataFrame, test: pd.DataFrame, reg: float = 5.0) -> dict:
    """RMSE/MAE on observed test ratings of the biased baseline and of the global train mean."""
    observed_train, observed_test = _observed(train), _observed(test)
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
