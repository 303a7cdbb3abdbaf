"""Implicit-feedback matrix factorisation (implicit's ALS) with a popularity fallback.

Users unknown at fit time get the popularity ranking of the train data (the same one
PopularityRecommender uses); their scores are interaction counts, so scores are comparable
within one user's list only. Lists shorter than k are padded with item -1 and score -inf.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix, load_npz, save_npz
from threadpoolctl import threadpool_limits

from models_ml.baselines import popularity_ranking
from models_ml.matrix import UNKNOWN, IdMap, confidence_matrix, default_event_weights
from models_ml.ranking import PAD_ITEM, PAD_SCORE, mark_excluded

FORMAT_VERSION = 1
MODEL_FILE = "als.npz"
USER_ITEMS_FILE = "user_items.npz"
IDS_FILE = "ids.npz"
PARAMS_FILE = "params.json"


class MatrixFactorizationRecommender:
    """ALS on the confidence matrix alpha * event_weight * rating / 5 (see models_ml.matrix).

    alpha is applied when the matrix is built, so implicit's own alpha stays 1.0.
    event_weights=None weighs every event type 1.0.
    """

    def __init__(
        self,
        n_factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.05,
        alpha: float = 20.0,
        event_weights: Mapping[str, float] | None = None,
        seed: int = 42,
    ) -> None:
        self.n_factors = n_factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.event_weights = dict(event_weights or default_event_weights())
        self.seed = seed
        self._model: AlternatingLeastSquares | None = None

    def params(self) -> dict[str, Any]:
        """The constructor arguments, as saved next to the model."""
        return {
            "n_factors": self.n_factors,
            "iterations": self.iterations,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "event_weights": self.event_weights,
            "seed": self.seed,
        }

    def fit(self, interactions: pd.DataFrame) -> MatrixFactorizationRecommender:
        """Fit on interaction rows (user_id, item_id, event_type, rating); BLAS on one thread."""
        user_items, self._users, self._items = confidence_matrix(
            interactions, self.event_weights, self.alpha
        )
        self._user_items = user_items
        self._popular_ids, self._popular_counts = popularity_ranking(interactions)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.n_factors,
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                random_state=self.seed,
            )
            model.fit(user_items, show_progress=False)
        self._model = model
        return self

    @property
    def user_ids(self) -> np.ndarray:
        """Raw ids of the users the model has factors for, sorted."""
        return self._fitted()._users.ids

    @property
    def item_ids(self) -> np.ndarray:
        """Raw ids of the items the model can recommend, sorted."""
        return self._fitted()._items.ids

    def recommend_batch(
        self, user_ids: Sequence[int] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item ids and scores, both (n_users, k), one row per user id given.

        exclude_known leaves out the items a user had in the training data.
        """
        model = self._fitted()._model
        rows = self._users.index(user_ids)
        item_ids = np.full((len(rows), k), PAD_ITEM, dtype=np.int64)
        scores = np.full((len(rows), k), PAD_SCORE, dtype=np.float32)
        known = rows != UNKNOWN
        n_top = min(k, len(self._items))
        if known.any() and n_top:
            found, found_scores = model.recommend(
                rows[known],
                self._user_items[rows[known]],
                N=n_top,
                filter_already_liked_items=exclude_known,
            )
            found, found_scores = mark_excluded(found, found_scores)
            raw = np.where(found == PAD_ITEM, PAD_ITEM, self._items.ids[np.maximum(found, 0)])
            item_ids[known, :n_top] = raw
            scores[known, :n_top] = found_scores
        n_popular = min(k, len(self._popular_ids))
        item_ids[~known, :n_popular] = self._popular_ids[:n_popular]
        scores[~known, :n_popular] = self._popular_counts[:n_popular]
        return item_ids, scores

    def recommend_items(
        self, user_id: int, n_recommendations: int = 10, exclude_known: bool = True
    ) -> list[tuple[int, float]]:
        """One user's recommendations as (item_id, score) pairs, best first, no padding."""
        item_ids, scores = self.recommend_batch([user_id], n_recommendations, exclude_known)
        return [
            (int(item), float(score))
            for item, score in zip(item_ids[0], scores[0], strict=True)
            if item != PAD_ITEM
        ]

    def save(self, directory: str | Path) -> Path:
        """Write the factors, train matrix, id maps and params into directory; return it."""
        self._fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._model.save(str(directory / MODEL_FILE))
        save_npz(directory / USER_ITEMS_FILE, self._user_items)
        np.savez(
            directory / IDS_FILE,
            user_ids=self._users.ids,
            item_ids=self._items.ids,
            popular_ids=self._popular_ids,
            popular_counts=self._popular_counts,
        )
        meta = {
            "format_version": FORMAT_VERSION,
            "params": self.params(),
            "implicit_version": version("implicit"),
        }
        (directory / PARAMS_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> MatrixFactorizationRecommender:
        """Read a model written by save()."""
        directory = Path(directory)
        meta = json.loads((directory / PARAMS_FILE).read_text())
        if meta["format_version"] != FORMAT_VERSION:
            raise ValueError(f"model format {meta['format_version']}, expected {FORMAT_VERSION}")
        recommender = cls(**meta["params"])
        with threadpool_limits(1, "blas"):  # implicit warns at construction when BLAS threads
            recommender._model = AlternatingLeastSquares.load(str(directory / MODEL_FILE))
        recommender._user_items = csr_matrix(load_npz(directory / USER_ITEMS_FILE))
        with np.load(directory / IDS_FILE) as ids:
            recommender._users = IdMap(ids["user_ids"])
            recommender._items = IdMap(ids["item_ids"])
            recommender._popular_ids = ids["popular_ids"]
            recommender._popular_counts = ids["popular_counts"]
        return recommender

    def _fitted(self) -> MatrixFactorizationRecommender:
        if self._model is None:
            raise RuntimeError("fit() or load() the recommender first")
        return self
