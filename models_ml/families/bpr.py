"""The bpr family: implicit's Bayesian Personalized Ranking."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse import csr_matrix

from models_ml.families.cost import RATE, Shape, factor_scoring
from models_ml.families.kinds import FactorModel
from models_ml.recommender import MEAN_FACTORS, Prepared, Scorer
from recomart_core.settings import MAX_FACTORS, MAX_ITERATIONS


class BPRSettings(BaseModel):
    """[train.bpr]: implicit's BPR."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    factors: int = Field(64, ge=1, le=MAX_FACTORS)
    learning_rate: float = Field(0.01, gt=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, ge=1, le=MAX_ITERATIONS)


def fit_bpr(user_items: csr_matrix, settings: BPRSettings, seed: int) -> Scorer:
    """BPR on the positive cells, one thread (several race: not reproducible)."""
    positive = user_items.multiply(user_items > 0).tocsr()  # BPR learns from positives only
    model = BayesianPersonalizedRanking(
        factors=settings.factors,
        learning_rate=settings.learning_rate,
        regularization=settings.regularization,
        iterations=settings.iterations,
        num_threads=1,  # several threads update factors in a race: not reproducible
        random_state=seed,
    )
    model.fit(csr_matrix(positive, dtype=np.float32), show_progress=False)
    return Scorer("bpr", model.user_factors, model.item_factors)


class BPR(FactorModel):
    """implicit's BPR: U, V (V's last column is an item bias, U's a 1). Its score does not split
    by item: explain gives the total only."""

    name = "bpr"
    title = "BPR (implicit)"
    description = "collaborative filtering (BPR (implicit))"
    Settings = BPRSettings
    flat_keys = MappingProxyType(
        {
            "bpr_factors": "factors",
            "bpr_learning_rate": "learning_rate",
            "bpr_regularization": "regularization",
            "bpr_iterations": "iterations",
        }
    )

    def fit_scorer(self, user_items: csr_matrix, popularity: np.ndarray) -> Scorer:
        return fit_bpr(user_items, self.settings, self.common.seed)

    @classmethod
    def cost_terms(cls, shape: Shape, settings: BPRSettings, shared: bool) -> tuple[float, ...]:
        fit = settings.iterations * shape.nnz * settings.factors / RATE["bpr"]
        return fit, factor_scoring(shape, settings.factors)

    def _contributions(self, user_row: int, item_row: int) -> tuple[float, dict[int, float]]:
        model = self._model
        score = model.user_factors[user_row] @ model.item_factors[item_row]
        return 0.0 + model.factor_scale * float(score), {}

    def _fold_in(self, row: csr_matrix, prep: Prepared) -> tuple[np.ndarray, str] | None:
        """BPR has no closed-form user step: the user's factors are the mean of the factors of
        the items with a positive confidence (the bias column's 1 kept), MEAN_FACTORS."""
        liked = row.indices[row.data > 0]
        if not len(liked):
            return None
        factors = self._model.item_factors[liked].mean(axis=0)
        factors[-1] = 1.0  # U's last column meets V's item bias
        return self._model.factor_scale * (prep.vectors @ factors.astype(np.float32)), MEAN_FACTORS
