"""The two kinds of learned family (models_ml.recommender.Recommender's hooks, written once per
kind): FactorModel scores U . V (ALS, BPR), ItemItemModel scores x_u @ W (EASE, item-kNN, the
hybrid, which adds its scaled U . V)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import issparse

from models_ml.ranking import top_k, top_k_of
from models_ml.recommender import ROW, ROW_AND_SOLVED, SOLVED, Prepared, Recommender


class FactorModel(Recommender):
    """A family whose score is U[u] . V[j]: top k from the factors alone (ranking.top_k),
    similar items by the cosine of item factors."""

    similarity_text = "the cosine of the items' learned factors"

    def _prepare_extra(self) -> None:
        self._neighbour_vectors()

    def _neighbour_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """The recommendable items' float64 factors and their norms (similar_items)."""
        if self._neighbours is None:
            vectors = self._model.item_factors[self._prepared().rec].astype(np.float64)
            self._neighbours = (vectors, np.linalg.norm(vectors, axis=1))
        return self._neighbours

    def _top(self, rows, prep, k, exclude):
        return top_k(prep.vectors, self._model.user_factors[rows], k, exclude)

    def _fold_in(self, row, prep: Prepared) -> tuple[np.ndarray, str]:
        """U . V with the user's factors re-solved from the row (least squares: ALS's step)."""
        factors = self._solved_factors(row).astype(np.float32)
        return self._model.factor_scale * (prep.vectors @ factors), SOLVED

    def _similarity(self, row: int, prep: Prepared) -> np.ndarray | None:
        vectors, norms = self._neighbour_vectors()
        query = self._model.item_factors[row].astype(np.float64)
        qn = np.linalg.norm(query)
        if qn == 0:
            return None
        return np.divide(vectors @ query, norms * qn, out=np.zeros(len(norms)), where=norms > 0)


class ItemItemModel(Recommender):
    """A family with item-item weights W (items x items): fitted on the linear confidence
    matrix, top k over dense chunks of the scores, similar items by the item's row of W
    (what having this one item adds to each other item's score; items it adds nothing to are
    left out), and explanations x_ui * W[i, j] over the user's items."""

    linear_matrix = True
    similarity_text = "the item's row of W: what having it adds to each other item's score"

    def _top(self, rows, prep, k, exclude):
        return top_k_of(
            lambda part: self._scores(rows[part], prep), len(rows), len(prep.rec), k, exclude
        )

    def _similarity(self, row: int, prep: Prepared) -> np.ndarray | None:
        weights = prep.weights[row]
        cosine = (weights.toarray() if issparse(weights) else weights).ravel()
        return np.where(cosine != 0, cosine, -np.inf).astype(np.float64)

    def _contributions(self, user_row: int, item_row: int) -> tuple[float, dict[int, float]]:
        return self._weight_part(user_row, item_row)

    def _fold_in(self, row, prep: Prepared) -> tuple[np.ndarray, str]:
        """x_u @ W of the row, plus the factor part (the hybrid's) with re-solved factors."""
        history = row @ prep.weights
        scores = np.asarray(history.toarray() if issparse(history) else history).ravel()
        if not self._model.has_factors:
            return scores, ROW
        factors = self._solved_factors(row).astype(np.float32)
        return scores + self._model.factor_scale * (prep.vectors @ factors), ROW_AND_SOLVED
