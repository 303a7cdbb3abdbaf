"""The hybrid family: EASE's W and ALS's factors, each scaled by its spread
(models_ml.families)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse import csr_matrix, issparse

from models_ml.families.als import ALS, ALSSettings, explain_factors, fit_als
from models_ml.families.cost import Shape
from models_ml.families.ease import EASE, EASESettings, ease_weights
from models_ml.families.kinds import ItemItemModel
from models_ml.matrix import bm25_cells
from models_ml.recommender import Scorer
from recomart_core.settings import Train

SPREAD_USERS = 2000  # training users whose scores measure a part's spread (hybrid)


class HybridSettings(BaseModel):
    """[train.hybrid] weight, the share of the ALS part; the parts' own settings are
    [train.ease] and [train.als]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(0.3, ge=0, le=1)
    ease: EASESettings = Field(default_factory=EASESettings)
    als: ALSSettings = Field(default_factory=ALSSettings)


class Hybrid(ItemItemModel):
    """EASE's W and ALS's U, V, each divided by the spread of its scores (up to SPREAD_USERS
    training users, over the items each can be recommended: their known items left out) and
    mixed as (1 - weight) * EASE + weight * ALS. The ALS part alone is BM25-weighted when
    [train] weighting = "bm25" (the matrix is linear)."""

    name = "hybrid"
    title = "EASE + ALS hybrid"
    description = "collaborative filtering (EASE + ALS hybrid)"
    Settings = HybridSettings
    dense = True
    flat_keys = MappingProxyType({"hybrid_weight": "weight"})
    parts = (("ease", EASE), ("als", ALS))  # nested settings and the families they come from
    starts_from = ("als", "ease")  # the search starts from their best points

    @classmethod
    def settings_from_train(cls, train: Train) -> BaseModel:
        """[train.hybrid] weight, with its parts' settings from [train.ease] and [train.als]."""
        nested = {key: part.settings_from_train(train) for key, part in cls.parts}
        return cls.Settings(**train.family_table(cls.name), **nested)

    @classmethod
    def max_items(cls, settings: BaseModel) -> int | None:
        return settings.ease.max_items

    @classmethod
    def cost_terms(cls, shape: Shape, settings: HybridSettings, shared: bool) -> tuple[float, ...]:
        return (
            *EASE.cost_terms(shape, settings.ease, shared),
            *ALS.cost_terms(shape, settings.als, shared),
        )

    def flat_settings(self) -> dict[str, Any]:
        out = super().flat_settings()
        for key, part in self.parts:
            part_settings = getattr(self.settings, key)
            out.update({flat: getattr(part_settings, f) for flat, f in part.flat_keys.items()})
        return out

    @classmethod
    def settings_from_flat(cls, values: Mapping[str, Any]) -> BaseModel:
        own = {key: values[flat] for flat, key in cls.flat_keys.items() if flat in values}
        nested = {key: part.settings_from_flat(values) for key, part in cls.parts}
        return cls.Settings(**own, **nested)

    def fit_scorer(self, user_items: csr_matrix, popularity: np.ndarray) -> Scorer:
        s, common = self.settings, self.common
        alpha = common.weighting.alpha
        weights = ease_weights(user_items / alpha, s.ease)
        factor_input = user_items
        if common.weighting.scheme == "bm25":  # the ALS part's own weighting (matrix linear)
            factor_input = alpha * bm25_cells(
                user_items / alpha, common.weighting.bm25_k1, common.weighting.bm25_b
            )
        als = fit_als(csr_matrix(factor_input, dtype=np.float32), s.als, common.seed)
        rows = _spread_rows(user_items, common.seed)
        known = user_items[rows]
        history = spread(known @ weights, known)
        factors = spread(als.user_factors[rows] @ als.item_factors.T, known)
        w = s.weight
        if weights.dtype != np.float32:
            weights = weights.astype(np.float32)
        weights *= np.float32((1.0 - w) / history)
        return Scorer(
            "hybrid",
            als.user_factors,
            als.item_factors,
            weights,
            factor_scale=w / factors,
            regularization=s.als.regularization,
        )

    def _contributions(self, user_row: int, item_row: int) -> tuple[float, dict[int, float]]:
        total, by_item = self._weight_part(user_row, item_row)
        return explain_factors(self._model, self._user_items, user_row, item_row, total, by_item)


def _spread_rows(user_items: csr_matrix, seed: int) -> np.ndarray:
    """Up to SPREAD_USERS users with interactions (seeded)."""
    users = np.flatnonzero(np.diff(user_items.indptr))
    if len(users) > SPREAD_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, SPREAD_USERS, replace=False))
    return users


def spread(scores, known: csr_matrix | None = None) -> float:
    """The standard deviation of a score matrix's cells (1 when it is 0). With `known` (the
    same users' rows of the training matrix), the cells of the users' known items are left
    out: they are never recommended, and EASE scores them high by construction, which would
    inflate its part's scale."""
    values = scores.toarray() if issparse(scores) else np.asarray(scores)
    if known is not None and values.size:
        recommendable = np.ones(values.shape, dtype=bool)
        recommendable[known.nonzero()] = False
        values = values[recommendable]
    deviation = float(values.std()) if values.size else 0.0
    return deviation if deviation > 0 else 1.0
