"""The rating predictor behind RMSE/MAE: a biased baseline, r_hat(u, i) = mu + b_u + b_i.

The families on implicit feedback rank items; they do not predict ratings (their scores are
preferences, not 1..5 stars). The seed's RMSE and MAE are therefore reported for this explicit
predictor (Koren's baseline estimates), fitted on the observed (not imputed) training ratings:

    minimise sum (r - mu - b_u - b_i)^2 + reg_user * sum b_u^2 + reg_item * sum b_i^2

by alternating closed-form updates (b_i given b_u, then b_u given b_i), starting from 0.
Unknown users or items get bias 0; predictions are clipped to the rating scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models_ml.matrix import UNKNOWN, IdMap
from recomart_core.schema import ITEM, RATING, RATING_MAX, RATING_MIN, USER

PREDICTOR = "biased baseline mu + b_u + b_i"


class BiasedBaseline:
    """mu + b_u + b_i with L2-regularised biases (see the module docstring)."""

    def __init__(self, reg_user: float = 5.0, reg_item: float = 5.0, iterations: int = 10):
        self.reg_user, self.reg_item, self.iterations = reg_user, reg_item, iterations

    def fit(self, ratings: pd.DataFrame) -> BiasedBaseline:
        """Fit on rows with user_id, item_id, rating (all rows count, duplicates included)."""
        if ratings.empty:
            raise ValueError("no ratings to fit the rating predictor on")
        r = ratings[RATING].to_numpy(dtype=np.float64)
        user_ids, u = np.unique(ratings[USER].to_numpy(dtype=np.int64), return_inverse=True)
        item_ids, i = np.unique(ratings[ITEM].to_numpy(dtype=np.int64), return_inverse=True)
        self.mu = float(r.mean())
        n_u = np.bincount(u, minlength=len(user_ids))
        n_i = np.bincount(i, minlength=len(item_ids))
        b_u = np.zeros(len(user_ids))
        b_i = np.zeros(len(item_ids))
        for _ in range(self.iterations):
            b_i = np.bincount(i, r - self.mu - b_u[u], len(item_ids)) / (n_i + self.reg_item)
            b_u = np.bincount(u, r - self.mu - b_i[i], len(user_ids)) / (n_u + self.reg_user)
        self._users, self._items = IdMap(user_ids), IdMap(item_ids)
        self.user_bias, self.item_bias = b_u, b_i
        return self

    def predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """Predicted ratings, clipped to [RATING_MIN, RATING_MAX]."""
        u = self._users.index(user_ids)
        i = self._items.index(item_ids)
        bu = np.where(u == UNKNOWN, 0.0, self.user_bias[np.maximum(u, 0)])
        bi = np.where(i == UNKNOWN, 0.0, self.item_bias[np.maximum(i, 0)])
        return np.clip(self.mu + bu + bi, RATING_MIN, RATING_MAX)
