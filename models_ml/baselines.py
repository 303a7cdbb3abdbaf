"""Baselines: every user gets the most interacted-with train items they may be recommended.

- global popularity (half_life_days = 0): items by their number of train interactions;
- recent popularity (half_life_days > 0): items by time-decayed counts, each interaction
  weighing 0.5 ** (age_days / half_life_days) from the newest train interaction;
- repeat (RepeatRecommender): the user's own items that the repeat policy allows again, by
  their repeat score (models_ml.matrix.repeat_scores: recent and frequent first), then popular
  items to fill k.

"Known" follows the repeat policy ([train] repeatable_events, `repeatable` here): the pairs
models_ml.matrix.excluded_pairs returns are never recommended (exclude_known=True); with no
repeatable event type that is every item the user had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from models_ml.coldstart import recent_popularity
from models_ml.matrix import (
    UNKNOWN,
    IdMap,
    default_event_weights,
    excluded_pairs,
    pair_matrix,
    repeat_scores,
    without_returns,
)
from models_ml.ranking import CHUNK_CELLS, PAD_ITEM, PAD_SCORE
from recomart_core.schema import ITEM, USER


def popularity_ranking(interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Item ids by number of interactions, returns not counted (descending, ties by item id)
    and those counts."""
    interactions = without_returns(interactions)
    items, counts = np.unique(interactions[ITEM].to_numpy(dtype=np.int64), return_counts=True)
    order = np.lexsort((items, -counts))
    return items[order], counts[order]


class PopularityRecommender:
    """(Recent) popularity, minus the pairs the repeat policy excludes. half_life_days = 0:
    global counts; repeatable: [train] repeatable_events (none: every item the user had is
    excluded)."""

    def __init__(self, half_life_days: float = 0.0, repeatable: Sequence[str] = ()) -> None:
        self.half_life_days = half_life_days
        self.repeatable = tuple(repeatable)

    def fit(self, interactions: pd.DataFrame) -> PopularityRecommender:
        """Rank items by (decayed) interactions and remember which items each user may not be
        recommended again (models_ml.matrix.excluded_pairs)."""
        if self.half_life_days > 0:
            self.item_ids, self.counts = recent_popularity(interactions, self.half_life_days)
        else:
            self.item_ids, self.counts = popularity_ranking(interactions)
        self._users = IdMap(unique_users(interactions))
        # Columns are positions in the ranking, so the ranking itself is the item order.
        self._by_item = np.argsort(self.item_ids, kind="stable")  # sorted index -> position
        self._sorted_items = IdMap(self.item_ids[self._by_item])
        excluded = excluded_pairs(interactions, self.repeatable)
        self._known = self._positions_matrix(excluded[USER], excluded[ITEM])
        return self

    def _positions_matrix(
        self, users: np.ndarray, items: np.ndarray, values: np.ndarray | None = None
    ) -> csr_matrix:
        """(known users + 1) x ranking positions (models_ml.matrix.pair_matrix: bool without
        values); items outside the ranking (only ever returned) left out; the last, empty row
        is what users unknown at fit time have."""
        matrix = pair_matrix(users, items, values, self._users, self._sorted_items)
        return csr_matrix(
            (matrix.data, self._by_item[matrix.indices], np.append(matrix.indptr, matrix.nnz)),
            shape=(len(self._users) + 1, len(self.item_ids)),
        )

    def _rows(self, user_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row of each user in the fitted matrices; unknown users: the last, empty row."""
        rows = self._users.index(user_ids)
        return np.where(rows == UNKNOWN, len(self._users), rows)

    def recommend_batch(
        self, user_ids: Sequence[int] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n_users, k) item ids and (decayed) interaction counts; padding is -1 and -inf."""
        known = self._known[self._rows(user_ids)]
        if not exclude_known:
            known = csr_matrix(known.shape, dtype=known.dtype)
        return self._ranked(first_free_positions(known, k))

    def _ranked(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Item ids and counts at ranking positions; PAD_ITEM positions stay padding."""
        padded = positions == PAD_ITEM
        safe = np.where(padded, 0, positions)
        item_ids = np.where(padded, PAD_ITEM, self.item_ids[safe])
        scores = np.where(padded, PAD_SCORE, self.counts[safe].astype(np.float32))
        return item_ids, scores


def unique_users(interactions: pd.DataFrame) -> np.ndarray:
    """The sorted user ids of the rows (int64)."""
    return np.unique(interactions[USER].to_numpy(dtype=np.int64))


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

    def __init__(self, half_life_days: float = 14.0, repeatable: Sequence[str] = ()) -> None:
        if half_life_days <= 0:
            raise ValueError(f"recent popularity needs a positive half-life, got {half_life_days}")
        super().__init__(half_life_days, repeatable)


class RepeatRecommender(PopularityRecommender):
    """The repeat baseline: "buy it again" / "seen recently" without a model.

    A known user's list: their own items that the repeat policy allows again (repeatable: [train]
    repeatable_events), by repeat score (models_ml.matrix.repeat_scores with half_life_days and
    event_weights: event weight x 0.5 ** (age / half-life), summed per item; ties by item id),
    then the most popular items (global counts) that are neither excluded nor already listed,
    to fill k. Scores: a fill item its interaction count, a repeat item the top count plus its
    repeat score (so every repeat item ranks above every fill item). Unknown users: popularity.
    With no repeatable event type nobody has repeat items: the lists and scores are exactly
    PopularityRecommender's. exclude_known=False: the repeat items, then popularity with
    nothing excluded (still without repeating a listed item).
    """

    def __init__(
        self,
        half_life_days: float = 30.0,
        repeatable: Sequence[str] = (),
        event_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(0.0, repeatable)
        self.repeat_half_life_days = half_life_days
        self.event_weights = dict(event_weights or default_event_weights())

    def fit(self, interactions: pd.DataFrame) -> RepeatRecommender:
        """Popularity and the excluded pairs (PopularityRecommender.fit), plus each user's
        repeat items in ranking positions (a CSR of repeat scores)."""
        super().fit(interactions)
        users, items, scores = repeat_scores(
            interactions, self.repeatable, self.event_weights, self.repeat_half_life_days
        )
        self._repeats = self._positions_matrix(users, items, scores)
        return self

    def recommend_batch(
        self, user_ids: Sequence[int] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n_users, k) item ids and scores (see the class): repeat items first, then popular
        items; padding is -1 and -inf."""
        rows = self._rows(user_ids)
        repeats = self._repeats[rows]
        n_users = len(rows)
        # each user's repeat items, best first (ties: lower item id), at most k of them
        owner = np.repeat(np.arange(n_users), np.diff(repeats.indptr))
        item_of = self.item_ids[repeats.indices]
        order = np.lexsort((item_of, -repeats.data, owner))
        owner, positions, values = owner[order], repeats.indices[order], repeats.data[order]
        n_repeat = np.bincount(owner, minlength=n_users)
        slot = np.arange(len(owner)) - np.repeat(np.cumsum(n_repeat) - n_repeat, n_repeat)
        listed = slot < k
        top = float(self.counts[0]) if len(self.counts) else 0.0
        item_ids = np.full((n_users, k), PAD_ITEM, dtype=np.int64)
        scores = np.full((n_users, k), PAD_SCORE, dtype=np.float32)
        item_ids[owner[listed], slot[listed]] = self.item_ids[positions[listed]]
        scores[owner[listed], slot[listed]] = (top + values[listed]).astype(np.float32)
        # fill: popular items not excluded and not already listed
        taken = self._known[rows] if exclude_known else csr_matrix(repeats.shape, dtype=bool)
        taken = (taken + (repeats != 0)).astype(bool)
        fill_ids, fill_scores = self._ranked(first_free_positions(taken, k))
        n_listed = np.minimum(n_repeat, k)
        source = np.arange(k)[None, :] - n_listed[:, None]  # slot j takes fill j - n_listed
        from_fill = source >= 0
        picked = np.take_along_axis(fill_ids, np.maximum(source, 0), axis=1)
        picked_scores = np.take_along_axis(fill_scores, np.maximum(source, 0), axis=1)
        item_ids = np.where(from_fill, picked, item_ids)
        scores = np.where(from_fill, picked_scores, scores)
        return item_ids, scores
