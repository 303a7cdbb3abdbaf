"""The als family: Alternating Least Squares on the confidence matrix: implicit's, or Spark
MLlib's inside a models_ml.mllib.fitting_on block (engine = "spark": training opens one). One
family either way: the same settings, matrix, Scorer, package and serving; models_ml.mllib says
how MLlib's confidence and regularisation compare with implicit's."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from models_ml import mllib
from models_ml.families.cost import Shape, als_seconds, factor_scoring
from models_ml.families.kinds import FactorModel
from models_ml.recommender import Scorer
from recomart_core.settings import MAX_FACTORS, MAX_ITERATIONS


class ALSSettings(BaseModel):
    """[train.als]: implicit's ALS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    factors: int = Field(16, ge=1, le=MAX_FACTORS)
    iterations: int = Field(15, ge=1, le=MAX_ITERATIONS)
    regularization: float = Field(0.2, ge=0)


def fit_als(user_items: csr_matrix, settings: ALSSettings, seed: int) -> Scorer:
    """implicit's ALS fitted on the confidence matrix (alpha is in it: implicit's stays 1)."""
    model = AlternatingLeastSquares(
        factors=settings.factors,
        regularization=settings.regularization,
        alpha=1.0,  # alpha is in the matrix (models_ml.matrix)
        iterations=settings.iterations,
        random_state=seed,
    )
    model.fit(user_items, show_progress=False)
    return Scorer(
        "als", model.user_factors, model.item_factors, regularization=settings.regularization
    )


def implicit_als(scorer: Scorer) -> AlternatingLeastSquares:
    """implicit's ALS over a Scorer's factors (its explain decomposes a score by the user's
    items); for the families whose factors are ALS's."""
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=scorer.item_factors.shape[1], regularization=scorer.regularization, alpha=1.0
        )
    model.user_factors, model.item_factors = scorer.user_factors, scorer.item_factors
    return model


def explain_factors(
    scorer: Scorer,
    user_items: csr_matrix,
    user_row: int,
    item_row: int,
    total: float,
    by_item: dict[int, float],
) -> tuple[float, dict[int, float]]:
    """total and by_item plus the ALS part: implicit's explanation, times factor_scale."""
    liked = user_items[user_row]
    with threadpool_limits(1, "blas"):
        als_total, top, _ = implicit_als(scorer).explain(
            user_row, user_items, item_row, N=max(1, len(liked.indices))
        )
    for row, contribution in top:
        by_item[int(row)] = by_item.get(int(row), 0.0) + scorer.factor_scale * contribution
    return total + scorer.factor_scale * float(als_total), by_item


class ALS(FactorModel):
    """implicit's ALS: U, V its factors, no W (the default family and the scale model)."""

    name = "als"
    title = "ALS (implicit)"
    description = "collaborative filtering (ALS (implicit))"
    Settings = ALSSettings
    flat_keys = MappingProxyType(
        {
            "n_factors": "factors",
            "iterations": "iterations",
            "regularization": "regularization",
        }
    )

    def fit_scorer(self, user_items: csr_matrix, popularity: np.ndarray) -> Scorer:
        """implicit's ALS (fit_als), or MLlib's inside a models_ml.mllib.fitting_on block."""
        backend = mllib.active()
        if backend is None:
            return fit_als(user_items, self.settings, self.common.seed)
        s = self.settings
        users, items = mllib.fit_als(
            backend, user_items, s.factors, s.iterations, s.regularization,
            self.common.weighting.alpha, self.common.seed,
        )  # fmt: skip
        return Scorer("als", users, items, regularization=s.regularization)

    @classmethod
    def cost_terms(cls, shape: Shape, settings: ALSSettings, shared: bool) -> tuple[float, ...]:
        factors = settings.factors
        return als_seconds(shape, factors, settings.iterations), factor_scoring(shape, factors)

    def _contributions(self, user_row: int, item_row: int) -> tuple[float, dict[int, float]]:
        return explain_factors(self._model, self._user_items, user_row, item_row, 0.0, {})
