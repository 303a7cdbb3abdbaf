"""Evaluate a fitted recommender on a time holdout with precision, recall and NDCG at k.

Evaluated users: those present in train with at least one relevant test item. Relevant items
of a user: test items the user did not have in train, with a rating >= min_rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from models_ml.metrics import mean_metrics_at_k
from recomart.schema import ITEM, RATING, USER


class Recommender(Protocol):
    def recommend_batch(
        self, user_ids: Sequence[int] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]: ...


def relevant_items(
    train: pd.DataFrame, test: pd.DataFrame, min_rating: float = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted ids of the evaluated users and, per user, the array of their relevant item ids."""
    pairs = test.loc[test[RATING] >= min_rating, [USER, ITEM]].drop_duplicates()
    pairs = pairs[pairs[USER].isin(train[USER].unique())]
    seen = train[[USER, ITEM]].drop_duplicates()
    pairs = pairs.merge(seen, on=[USER, ITEM], how="left", indicator=True)
    pairs = pairs[pairs["_merge"] == "left_only"].sort_values([USER, ITEM])
    users = pairs[USER].to_numpy(dtype=np.int64)
    items = pairs[ITEM].to_numpy(dtype=np.int64)
    user_ids, starts = np.unique(users, return_index=True)
    return user_ids, np.split(items, starts[1:]) if len(items) else []


def evaluate(
    recommender: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    min_rating: float = 0,
) -> dict[str, float]:
    """Mean precision/recall/NDCG at k over the evaluated users, plus n_users.

    Keys: precision_at_<k>, recall_at_<k>, ndcg_at_<k>, n_users. Recommendations exclude
    the items each user had in train.
    """
    user_ids, relevant = relevant_items(train, test, min_rating)
    if len(user_ids) == 0:
        raise ValueError("no user of the test period has a relevant item: nothing to evaluate")
    recommended, _ = recommender.recommend_batch(user_ids, k, exclude_known=True)
    return {**mean_metrics_at_k(recommended, relevant, k), "n_users": len(user_ids)}
