"""The popularity family: the popularity baseline as a model, what a refused model search serves
(models_ml.tune). U = 1 for every user, V[j] = item j's training interactions, returns not
counted (models_ml.coldstart.recent_popularity without decay: the counts
models_ml.baselines.PopularityRecommender ranks by), so score(u, j) = popularity(j) for every
user and a list is the popularity ranking minus what the user may not get again, ties by the
lower item code: exactly PopularityRecommender's list. With [train] repeat_weight 1 the user's
own repeatable items come first: the repeat baseline (up to ties of repeat scores, broken here
by popularity, there by item code). No W, no fitting: fit passes the counts. Its recommendable
items are those with interactions (cold catalog items are not imputed); unknown users get the
same plain counts (no decay: one ranking for everybody). Never a candidate of the model search.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.sparse import csr_matrix

from models_ml.baselines import first_free_positions
from models_ml.ranking import PAD_ITEM, PAD_SCORE
from models_ml.recommender import Prepared, Recommender, Scorer


class PopularitySettings(BaseModel):
    """The popularity family has no settings of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def popularity_scorer(n_users: int, popularity: np.ndarray) -> Scorer:
    """The popularity family: rank-1 factors U = 1 (n_users x 1) and V = popularity (n_items x
    1, float32: interaction counts are exact up to 2**24), so that U[u] . V[j] = popularity[j]."""
    return Scorer(
        "popularity",
        np.ones((n_users, 1), dtype=np.float32),
        np.asarray(popularity, dtype=np.float32).reshape(-1, 1),
    )


class Popularity(Recommender):
    """The popularity baseline served as a model (the module docstring). Every known user has
    the one path; explain gives the item's count (no item of the user's drove it) and
    similar_items the most popular other items (no item similarity)."""

    name = "popularity"
    title = "popularity"  # the baseline served as a model (its name in reports too)
    description = (
        "popularity: the most interacted-with items the user may get (nothing learned beats it"
        " on validation)"
    )
    similarity_text = "popularity (the baseline has no item similarity: the most popular items)"
    Settings = PopularitySettings
    is_baseline = True
    blend_path = False

    def fit_scorer(self, user_items: csr_matrix, popularity: np.ndarray) -> Scorer:
        return popularity_scorer(user_items.shape[0], popularity)

    def _popularity_half_life(self) -> float:
        return 0.0  # plain counts: one ranking for everybody

    def _impute_cold(self, model: Scorer) -> None:
        return None  # cold catalog items have no count: not recommendable

    def _recommendable(self) -> np.ndarray:
        return self._model.item_factors[:, 0] > 0

    def _prepare_extra(self) -> None:
        self._popularity_ranking()

    def _similarity(self, row: int, prep: Prepared) -> np.ndarray | None:
        return prep.vectors[:, 0].astype(np.float64)

    def _contributions(self, user_row: int, item_row: int) -> tuple[float, dict[int, float]]:
        return float(self._model.item_factors[item_row, 0]), {}  # the count, nobody's doing

    def _popularity_ranking(self) -> np.ndarray:
        """The recommendable items (positions in prep.rec) best first: by count, ties by the
        lower item index (= code), as top_k would order them."""
        if self._ranking is None:
            counts = self._prepared().vectors[:, 0]
            self._ranking = np.lexsort((np.arange(len(counts)), -counts))
        return self._ranking

    def _top(self, rows, prep, k, exclude):
        """Top k without scoring every item: the fixed ranking minus each user's excluded items
        (baselines.first_free_positions), so a user costs O(k + their excluded items), not
        O(items). The same lists and scores as top_k over U . V (counts are exact in
        float32)."""
        ranking = self._popularity_ranking()
        position = np.empty(len(ranking), dtype=np.int64)
        position[ranking] = np.arange(len(ranking))
        if exclude is None:
            exclude = csr_matrix((len(rows), len(ranking)), dtype=np.float32)
        taken = csr_matrix(
            (np.ones(exclude.nnz, dtype=bool), position[exclude.indices], exclude.indptr),
            shape=exclude.shape,
        )
        positions = first_free_positions(taken, k)
        padded = positions == PAD_ITEM
        idx = np.where(padded, PAD_ITEM, ranking[np.where(padded, 0, positions)])
        scores = np.where(padded, PAD_SCORE, prep.vectors[np.maximum(idx, 0), 0])
        return idx, scores.astype(np.float32)
