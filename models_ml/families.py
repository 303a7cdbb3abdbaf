"""The model families: each turns the confidence matrix X (users x items, models_ml.matrix) into
one Scorer, so that every family scores, serves, saves and explains the same way:

    score(user u, item j) = (x_u @ W)[j] + factor_scale * U[u] . V[j]

- als (the default and the scale model): implicit's ALS; U, V its factors, no W.
- bpr: implicit's Bayesian Personalized Ranking; U, V (V's last column is an item bias, U's a 1).
- ease: the closed-form item-item autoencoder on the Gram matrix G = X'X (Steck 2019, 2020), with
  L = l2 + dropout / (1 - dropout) * diag(G) and P = (G + diag(L))^-1:
    zero diagonal (EASE, with dropout: EDLAE): W = I - P diagMat(1 / diag(P)), diagonal 0;
    free diagonal (DLAE): W = (G + diag(L))^-1 G = I - P diagMat(L).
  W is dense: catalogs up to `ease_max_items` (memory grows with items squared).
- itemknn: implicit's item-item neighbours (cosine or BM25), the K best per item; W sparse.
- hybrid: EASE's W and ALS's U, V, each divided by the spread of its scores on the training
  users and mixed as (1 - hybrid_weight) * EASE + hybrid_weight * ALS.

The item-item families (ease, itemknn, hybrid) are given the linear confidence matrix whatever
[train] weighting says (models_ml.recommender): their X is confidence / alpha, so l2 does not
depend on alpha; the hybrid's ALS part alone is BM25-weighted when weighting = "bm25".
Fitting is deterministic for a seed: BLAS on one thread, BPR on one thread.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
from implicit.utils import ParameterWarning
from scipy.sparse import csr_matrix, issparse
from threadpoolctl import threadpool_limits

from models_ml.matrix import bm25_cells
from recomart.core.settings import Family

FAMILIES = get_args(Family)  # ("als", "bpr", "ease", "itemknn", "hybrid")
ITEM_ITEM = ("ease", "itemknn", "hybrid")  # fitted on the linear confidence matrix
DENSE = ("ease", "hybrid")  # a dense items x items matrix: up to [train] ease_max_items
TITLES = {  # what reports, the CLI and the API call each family
    "als": "ALS (implicit)",
    "bpr": "BPR (implicit)",
    "ease": "EASE / DLAE",
    "itemknn": "item-kNN (implicit)",
    "hybrid": "EASE + ALS hybrid",
}
# the [train] settings (and recommender params) of the families beyond ALS's own
PARAMS = (
    "family",
    "ease_l2",
    "ease_dropout",
    "ease_zero_diagonal",
    "ease_max_items",
    "bpr_factors",
    "bpr_learning_rate",
    "bpr_regularization",
    "bpr_iterations",
    "knn_similarity",
    "knn_neighbours",
    "hybrid_weight",
)
SIMILARITIES = ("cosine", "bm25")
SPREAD_USERS = 2000  # training users whose scores measure a part's spread (hybrid)
FLOAT64_BYTES = 8


@dataclass
class Scorer:
    """A fitted family as arrays: user_factors U (n_users x f, f may be 0), item_factors V
    (n_items x f), item_weights W (n_items x n_items, dense or CSR; None without one),
    factor_scale (the weight of U . V), regularization (ALS's, for explain)."""

    family: str
    user_factors: np.ndarray
    item_factors: np.ndarray
    item_weights: np.ndarray | csr_matrix | None = None
    factor_scale: float = 1.0
    regularization: float = 0.0

    @property
    def has_factors(self) -> bool:
        return self.item_factors.shape[1] > 0

    def arrays(self) -> dict[str, Any]:
        """The arrays models_ml.package saves (W apart: dense or sparse)."""
        return {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "factor_scale": np.float64(self.factor_scale),
            "regularization": np.float64(self.regularization),
        }

    def als(self) -> AlternatingLeastSquares:
        """implicit's ALS over these factors (its explain decomposes a score by the user's
        items); only for the ALS-based families."""
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.item_factors.shape[1], regularization=self.regularization, alpha=1.0
            )
        model.user_factors, model.item_factors = self.user_factors, self.item_factors
        return model


def fit(family: str, user_items: csr_matrix, alpha: float, p: dict[str, Any]) -> Scorer:
    """Fit one family on the confidence matrix. p: the recommender's params (n_factors,
    iterations, regularization, seed, ease_*, bpr_*, knn_*, hybrid_weight)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    with threadpool_limits(1, "blas"):
        if family == "als":
            return _als(user_items, p)
        if family == "bpr":
            return _bpr(user_items, p)
        if family == "ease":
            return _empty_factors(family, user_items, ease_weights(user_items / alpha, p))
        if family == "itemknn":
            return _empty_factors(family, user_items, knn_weights(user_items / alpha, p))
        return _hybrid(user_items, alpha, p)


def _empty_factors(family: str, user_items: csr_matrix, weights) -> Scorer:
    n_users, n_items = user_items.shape
    return Scorer(
        family,
        np.zeros((n_users, 0), dtype=np.float32),
        np.zeros((n_items, 0), dtype=np.float32),
        weights,
    )


def _als(user_items: csr_matrix, p: dict[str, Any]) -> Scorer:
    model = AlternatingLeastSquares(
        factors=p["n_factors"],
        regularization=p["regularization"],
        alpha=1.0,  # alpha is in the matrix (models_ml.matrix)
        iterations=p["iterations"],
        random_state=p["seed"],
    )
    model.fit(user_items, show_progress=False)
    return Scorer("als", model.user_factors, model.item_factors, regularization=p["regularization"])


def _bpr(user_items: csr_matrix, p: dict[str, Any]) -> Scorer:
    positive = user_items.multiply(user_items > 0).tocsr()  # BPR learns from positives only
    model = BayesianPersonalizedRanking(
        factors=p["bpr_factors"],
        learning_rate=p["bpr_learning_rate"],
        regularization=p["bpr_regularization"],
        iterations=p["bpr_iterations"],
        num_threads=1,  # several threads update factors in a race: not reproducible
        random_state=p["seed"],
    )
    model.fit(csr_matrix(positive, dtype=np.float32), show_progress=False)
    return Scorer("bpr", model.user_factors, model.item_factors)


def ease_weights(x: csr_matrix, p: dict[str, Any]) -> np.ndarray:
    """EASE / EDLAE / DLAE item-item weights (the module docstring), float32; ValueError above
    ease_max_items items."""
    n_items = x.shape[1]
    if n_items > p["ease_max_items"]:
        gigabytes = 3 * n_items**2 * FLOAT64_BYTES / 1e9
        raise ValueError(
            f"family 'ease' needs dense {n_items} x {n_items} item matrices (about "
            f"{gigabytes:.1f} GB): above [train] ease_max_items = {p['ease_max_items']}; use "
            f"family 'als' or 'itemknn' for this catalog"
        )
    gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
    dropout = p["ease_dropout"]
    penalty = p["ease_l2"] + dropout / (1.0 - dropout) * np.diag(gram)
    gram[np.diag_indices(n_items)] += penalty
    inverse = np.linalg.inv(gram)
    del gram
    if p["ease_zero_diagonal"]:
        weights = inverse / -np.diag(inverse)[None, :]
        weights[np.diag_indices(n_items)] = 0.0
    else:
        weights = inverse * -penalty[None, :]
        weights[np.diag_indices(n_items)] += 1.0
    return weights.astype(np.float32)


def knn_weights(x: csr_matrix, p: dict[str, Any]) -> csr_matrix:
    """The K nearest items of each item (implicit, cosine or BM25), as a CSR W (float32)."""
    similarity = p["knn_similarity"]
    if similarity not in SIMILARITIES:
        raise ValueError(f"knn_similarity must be one of {SIMILARITIES}, got {similarity!r}")
    positive = csr_matrix(x.multiply(x > 0), dtype=np.float64)
    k = p["knn_neighbours"]
    model = (
        CosineRecommender(K=k, num_threads=1)
        if similarity == "cosine"
        else BM25Recommender(K=k, num_threads=1)
    )
    with warnings.catch_warnings():  # implicit converts its own normalised COO to CSR
        warnings.filterwarnings("ignore", category=ParameterWarning)
        model.fit(positive, show_progress=False)
    return csr_matrix(model.similarity, dtype=np.float32)


def _hybrid(user_items: csr_matrix, alpha: float, p: dict[str, Any]) -> Scorer:
    weights = ease_weights(user_items / alpha, p)
    factor_input = user_items
    if p["weighting"] == "bm25":  # the ALS part's own weighting (the matrix is linear)
        factor_input = alpha * bm25_cells(user_items / alpha, p["bm25_k1"], p["bm25_b"])
    als = _als(csr_matrix(factor_input, dtype=np.float32), p)
    rows = _spread_rows(user_items, p["seed"])
    history = spread(user_items[rows] @ weights)
    factors = spread(als.user_factors[rows] @ als.item_factors.T)
    w = p["hybrid_weight"]
    weights *= np.float32((1.0 - w) / history)
    return Scorer(
        "hybrid",
        als.user_factors,
        als.item_factors,
        weights,
        factor_scale=w / factors,
        regularization=p["regularization"],
    )


def _spread_rows(user_items: csr_matrix, seed: int) -> np.ndarray:
    """Up to SPREAD_USERS users with interactions (seeded)."""
    users = np.flatnonzero(np.diff(user_items.indptr))
    if len(users) > SPREAD_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, SPREAD_USERS, replace=False))
    return users


def spread(scores) -> float:
    """The standard deviation of a score matrix's cells (1 when it is 0)."""
    values = scores.toarray() if issparse(scores) else np.asarray(scores)
    deviation = float(values.std()) if values.size else 0.0
    return deviation if deviation > 0 else 1.0
