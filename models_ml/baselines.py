"""Popularity baseline: every user gets the items with the most train interactions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from models_ml.matrix import UNKNOWN, IdMap
from models_ml.ranking import PAD_ITEM, PAD_SCORE, top_k
from recomart.schema import ITEM, USER


def popularity_ranking(interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Item ids by number of interactions (descending, ties by item id) and those counts."""
    items, counts = np.unique(interactions[ITEM].to_numpy(dtype=np.int64), return_counts=True)
    order = np.lexsort((items, -counts))
    return items[order], counts[order]


class PopularityRecommender:
    """Global popularity: the most interacted-with train items, minus those the user knows."""

    def fit(self, interactions: pd.DataFrame) -> PopularityRecommender:
        """Count interactions per item and remember which items each user already has."""
        self.item_ids, self.counts = popularity_ranking(interactions)
        user_ids, rows = np.unique(interactions[USER].to_numpy(dtype=np.int64), return_inverse=True)
        # Columns are positions in the ranking, so the ranking itself is the item order.
        by_item = np.argsort(self.item_ids)
        cols = by_item[
            np.searchsorted(self.item_ids, interactions[ITEM].to_numpy(), sorter=by_item)
        ]
        # One extra, empty row: what users unknown at fit time know.
        known = csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(len(user_ids) + 1, len(self.item_ids)),
        )
        known.sum_duplicates()
        self._users = IdMap(user_ids)
        self._known = known
        return self

    def recommend_batch(
        self, user_ids: Sequence[int] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n_users, k) item ids and interaction counts; padding is -1 and -inf."""
        rows = self._users.index(user_ids)
        n_items = len(self.item_ids)
        # A strictly decreasing score per ranking position keeps the order and breaks no ties.
        rank_scores = np.arange(n_items, 0, -1, dtype=np.float32)[:, None]
        exclude = None
        if exclude_known:
            exclude = self._known[np.where(rows == UNKNOWN, len(self._users), rows)]
        positions, _ = top_k(rank_scores, np.ones((len(rows), 1), dtype=np.float32), k, exclude)
        padded = positions == PAD_ITEM
        safe = np.where(padded, 0, positions)
        item_ids = np.where(padded, PAD_ITEM, self.item_ids[safe])
        scores = np.where(padded, PAD_SCORE, self.counts[safe].astype(np.float32))
        return item_ids, scores
