"""Popularity baselines: every user gets the most interacted-with train items they do not know.

- global popularity (half_life_days = 0): items by their number of train interactions;
- recent popularity (half_life_days > 0): items by time-decayed counts, each interaction
  weighing 0.5 ** (age_days / half_life_days) from the newest train interaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from models_ml.coldstart import recent_popularity
from models_ml.matrix import UNKNOWN, IdMap, without_returns
from models_ml.ranking import CHUNK_CELLS, PAD_ITEM, PAD_SCORE
from recomart.core.schema import ITEM, USER


def popularity_ranking(interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Item ids by number of interactions, returns not counted (descending, ties by item id)
    and those counts."""
    interactions = without_returns(interactions)
    items, counts = np.unique(interactions[ITEM].to_numpy(dtype=np.int64), return_counts=True)
    order = np.lexsort((items, -counts))
    return items[order], counts[order]


class PopularityRecommender:
    """(Recent) popularity, minus the items the user knows. half_life_days = 0: global counts."""

    def __init__(self, half_life_days: float = 0.0) -> None:
        self.half_life_days = half_life_days

    def fit(self, interactions: pd.DataFrame) -> PopularityRecommender:
        """Rank items by (decayed) interactions and remember which items each user has."""
        if self.half_life_days > 0:
            self.item_ids, self.counts = recent_popularity(interactions, self.half_life_days)
        else:
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
        """(n_users, k) item ids and (decayed) interaction counts; padding is -1 and -inf."""
        rows = self._users.index(user_ids)
        known = self._known[np.where(rows == UNKNOWN, len(self._users), rows)]
        if not exclude_known:
            known = csr_matrix(known.shape, dtype=known.dtype)
        positions = first_free_positions(known, k)
        padded = positions == PAD_ITEM
        safe = np.where(padded, 0, positions)
        item_ids = np.where(padded, PAD_ITEM, self.item_ids[safe])
        scores = np.where(padded, PAD_SCORE, self.counts[safe].astype(np.float32))
        return item_ids, scores


def first_free_positions(known: csr_matrix, k: int) -> np.ndarray:
    """(rows, k): per row, the k lowest column positions that are not stored in known (CSR),
    padded with PAD_ITEM when fewer are left. A fixed ranking minus each user's items:
    only the first k + (items the user knows) positions can hold the answer, so a row costs
    that much, not the whole catalog."""
    n_rows, n_items = known.shape
    out = np.full((n_rows, k), PAD_ITEM, dtype=np.int64)
    counts = np.diff(known.indptr)
    step = max(1, CHUNK_CELLS // (k + int(counts.max(initial=0))))
    for start in range(0, n_rows, step):
        part = known[start : start + step]
        width = min(n_items, k + int(np.diff(part.indptr).max(initial=0)))
        free = np.ones((part.shape[0], width), dtype=bool)
        rows = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
        inside = part.indices < width
        free[rows[inside], part.indices[inside]] = False
        chosen = free & (np.cumsum(free, axis=1) <= k)
        r, c = np.nonzero(chosen)  # row-major: each row's positions in increasing order
        n_chosen = np.bincount(r, minlength=part.shape[0])
        slot = np.arange(len(r)) - np.repeat(np.cumsum(n_chosen) - n_chosen, n_chosen)
        out[start + r, slot] = c
    return out


class RecentPopularityRecommender(PopularityRecommender):
    """Recent popularity: time-decayed counts with a half-life of half_life_days (> 0)."""

    def __init__(self, half_life_days: float = 14.0) -> None:
        if half_life_days <= 0:
            raise ValueError(f"recent popularity needs a positive half-life, got {half_life_days}")
        super().__init__(half_life_days)
