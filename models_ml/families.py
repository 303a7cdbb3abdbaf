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
  P comes from one Cholesky factorisation and its inverse (LAPACK potrf + potri, in G's own
  buffer), in float32 when Gershgorin's bound on the condition number of G + diag(L) is at most
  FLOAT32_MAX_CONDITION (1e5), else float64. `make bench-ease` measures it side by side in one
  run (reports/bench_ease.md: np.linalg.inv against the Cholesky inverse in float64 and float32,
  and the top 10 of float32 against float64): at 9,881 items inv 70 s, Cholesky 27 s (float64)
  and 13 s (float32), the same NDCG@10 and the same top 10 for every user. Past the bound,
  float32 starts to reorder near-ties (measured once: at a bound of 1.7e5, l2 0.2 on MovieLens,
  98.9 % of the lists stay the same).
  Both diagonal variants come from one P: inside shared_inverses() (the model search) the last
  P is kept, one at a time, and the other variant costs no factorisation. An eigendecomposition
  G = Q diag(e) Q' shared across l2 values was measured and is not used: at 4,000 items eigh
  took 12.4 s where one Cholesky inverse takes 1.5 s, and each l2 would still need the product
  Q diag(1 / (e + l2)) Q', 1.5 s as well: it never pays for a grid of a few l2 values.
- itemknn: implicit's item-item neighbours (cosine or BM25), the K best per item; W sparse.
- hybrid: EASE's W and ALS's U, V, each divided by the spread of its scores (up to
  SPREAD_USERS training users, over the items each can be recommended: their known items left
  out) and mixed as (1 - hybrid_weight) * EASE + hybrid_weight * ALS.
- popularity: the popularity baseline as a model, what a refused model search serves
  (models_ml.tune): U = 1 for every user, V[j] = item j's training interactions, returns not
  counted (models_ml.coldstart.recent_popularity without decay: the counts
  models_ml.baselines.PopularityRecommender ranks by), so score(u, j) = popularity(j) for every
  user and a list is the popularity ranking minus what the user may not get again; with
  [train] repeat_weight 1 (models_ml.recommender) the user's own repeatable items come first:
  the repeat baseline. No W, no fitting: the recommender passes the counts (fit's popularity).
  Never a candidate of the model search (BASELINE_FAMILIES).

fit_seconds is the a priori cost of a fit and its scoring (from the matrix's shape and the
family's settings, RATE measured on this project's 2-core machine) that the model search's time
budget starts from (models_ml.selection).

The item-item families (ease, itemknn, hybrid) are given the linear confidence matrix whatever
[train] weighting says (models_ml.recommender): their X is confidence / alpha, so l2 does not
depend on alpha; the hybrid's ALS part alone is BM25-weighted when weighting = "bm25".
Fitting is deterministic for a seed: BLAS on one thread, BPR on one thread.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
from implicit.utils import ParameterWarning
from scipy.linalg import get_blas_funcs, get_lapack_funcs
from scipy.sparse import csr_matrix, issparse
from threadpoolctl import threadpool_limits

from models_ml.matrix import bm25_cells
from recomart_core.settings import Family

ALL_FAMILIES = get_args(Family)  # every [train] family: the learned ones and the baselines
BASELINE_FAMILIES = ("popularity",)  # served when nothing learned beats it; never searched
# the learned families, what the model search and the benchmarks compare:
# ("als", "bpr", "ease", "itemknn", "hybrid")
FAMILIES = tuple(f for f in ALL_FAMILIES if f not in BASELINE_FAMILIES)
ITEM_ITEM = ("ease", "itemknn", "hybrid")  # fitted on the linear confidence matrix
DENSE = ("ease", "hybrid")  # a dense items x items matrix: up to [train] ease_max_items
TITLES = {  # what reports, the CLI and the API call each family
    "als": "ALS (implicit)",
    "bpr": "BPR (implicit)",
    "ease": "EASE / DLAE",
    "itemknn": "item-kNN (implicit)",
    "hybrid": "EASE + ALS hybrid",
    "popularity": "popularity",  # the baseline served as a model (its name in reports too)
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
FLOAT32_MAX_CONDITION = 1e5  # EASE in float32 up to this condition bound (ease_dtype)
GRAM_BLOCK_CELLS = 1 << 24  # users x items cells made dense at a time (gram)
# Work per second on one core of the 2-core machine the project is measured on (one BLAS
# thread): what fit_seconds divides by. The search rescales each family by its first fit.
RATE = {
    "gram_dense": 4e10,  # users x items^2 of dense X'X (BLAS syrk)
    "gram_sparse": 3e7,  # co-occurrences (sum over users of their items squared), sparse X'X
    "todense": 3e7,  # items^2 cells of a sparse Gram matrix made dense
    "cholesky": 5.5e10,  # items^3 of potrf + potri (float32; float64 half as fast)
    "cells": 3e8,  # items^2 passes over a dense matrix (W from P, copies)
    "als": 3.4e9,  # iterations x 3 CG steps x ((users + items) factors^2 + 2 nnz factors)
    "als_iteration": 25.0,  # iterations a second of implicit's fixed cost per iteration
    "bpr": 2e8,  # iterations x nnz x factors
    "knn": 3e7,  # co-occurrences of implicit's item-item neighbours
    "impute": 1e7,  # items^2 cells of a dense W when cold items' rows are imputed
    "rows": 1e6,  # interaction rows turned into the confidence matrix and cold-start arrays
    "score_factors": 1.5e9,  # scored users x items x (factors + 10): dense scores and top k
    "score_weights": 5e8,  # scored users' stored cells x items: x_u @ W and top k
}


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


def fit(
    family: str,
    user_items: csr_matrix,
    alpha: float,
    p: dict[str, Any],
    popularity: np.ndarray | None = None,
) -> Scorer:
    """Fit one family on the confidence matrix. p: the recommender's params (n_factors,
    iterations, regularization, seed, ease_*, bpr_*, knn_*, hybrid_weight); popularity: per
    item (matrix column), its training interactions (the popularity family's V; required for
    it, unused by the others)."""
    if family not in ALL_FAMILIES:
        raise ValueError(f"family must be one of {ALL_FAMILIES}, got {family!r}")
    if family == "popularity":
        if popularity is None:
            raise ValueError("family 'popularity' needs the items' popularity (per column)")
        return popularity_scorer(user_items.shape[0], popularity)
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


def served_baseline(family: str, repeat_weight: float, repeatable: bool) -> str | None:
    """The baseline a baseline family serves, in words: "popularity", "repeat" (repeat_weight
    1 with repeatable event types: the user's own items first, then popularity) or popularity
    blended with repeats; None for a learned family."""
    if family not in BASELINE_FAMILIES:
        return None
    if repeat_weight == 0 or not repeatable:
        return family
    if repeat_weight == 1:
        return "repeat"
    return f"{family} blended with repeats (repeat_weight {repeat_weight:g})"


def popularity_scorer(n_users: int, popularity: np.ndarray) -> Scorer:
    """The popularity family: rank-1 factors U = 1 (n_users x 1) and V = popularity (n_items x
    1, float32: interaction counts are exact up to 2**24), so that U[u] . V[j] = popularity[j]."""
    return Scorer(
        "popularity",
        np.ones((n_users, 1), dtype=np.float32),
        np.asarray(popularity, dtype=np.float32).reshape(-1, 1),
    )


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
    ease_max_items items. Inside `shared_inverses()`, the inverse of the last matrix and penalty
    is reused (the other diagonal variant costs no factorisation)."""
    n_items = x.shape[1]
    if n_items > p["ease_max_items"]:
        gigabytes = 3 * n_items**2 * FLOAT64_BYTES / 1e9
        raise ValueError(
            f"family 'ease' needs dense {n_items} x {n_items} item matrices (about "
            f"{gigabytes:.1f} GB): above [train] ease_max_items = {p['ease_max_items']}; use "
            f"family 'als' or 'itemknn' for this catalog"
        )
    l2, dropout = float(p["ease_l2"]), float(p["ease_dropout"])
    cache = _SHARED.get()
    if cache is None:
        inverse, penalty = ease_inverse(x, l2, dropout)
        return _ease_from_inverse(inverse, penalty, p["ease_zero_diagonal"], in_place=True)
    key = (_digest(x), l2, dropout)
    found = cache.get(key)
    if found is None:
        cache.clear()  # one inverse at a time: free the last before computing the next
        found = ease_inverse(x, l2, dropout)
        cache.put(key, *found)
    return _ease_from_inverse(*found, p["ease_zero_diagonal"], in_place=False)


def gram(x: csr_matrix, dtype: type[np.floating] = np.float64) -> np.ndarray:
    """G = X'X, dense (items x items, C order) in dtype. Few users for the items: BLAS syrk on
    blocks of users' rows made dense (users x items^2 / 2 multiply-adds, accumulated in place);
    else the sparse product (the sum over users of their items squared), made dense. Whichever
    is estimated cheaper."""
    n_users, n_items = x.shape
    x = csr_matrix(x)
    lengths = np.diff(x.indptr).astype(np.float64)
    dense_s = n_users * float(n_items) ** 2 / RATE["gram_dense"]
    sparse_s = float(lengths @ lengths) / RATE["gram_sparse"] + n_items**2 / RATE["todense"]
    if sparse_s < dense_s:
        return np.asarray((x.T @ x).toarray(), dtype=dtype)
    out = np.zeros((n_items, n_items), dtype=dtype, order="F")
    syrk = get_blas_funcs("syrk", (out,))
    block = max(1, GRAM_BLOCK_CELLS // max(n_items, 1))
    for start in range(0, n_users, block):
        rows = x[start : start + block].toarray().astype(dtype, copy=False)
        # out (Fortran order) += rows' rows, its upper triangle only, in place
        out = syrk(1.0, rows, beta=1.0, c=out, trans=1, overwrite_c=1)
    symmetric = out.T  # C order; the upper triangle of `out` is its lower triangle
    _mirror_lower(symmetric)
    return symmetric


def ease_penalty(diagonal: np.ndarray, l2: float, dropout: float) -> np.ndarray:
    """L = l2 + dropout / (1 - dropout) * diag(G), per item (float64)."""
    return l2 + dropout / (1.0 - dropout) * diagonal


def ease_dtype(x: csr_matrix, penalty: np.ndarray) -> type[np.floating]:
    """float32 when the penalised Gram matrix is well enough conditioned for it, else float64.

    The condition number of G + diag(L) is at most (largest row sum of |X|'|X|, Gershgorin's
    bound on G's largest eigenvalue, + max L) / min L; the inverse's relative error grows like
    that number times the precision (float32: 6e-8). Up to FLOAT32_MAX_CONDITION, float32
    changes the top 10 of almost no user (measured in the module docstring)."""
    if not len(penalty) or penalty.min() <= 0:
        return np.float64
    magnitude = abs(csr_matrix(x))
    row_sums = magnitude.T @ np.asarray(magnitude.sum(axis=1)).ravel()
    bound = (float(row_sums.max(initial=0.0)) + float(penalty.max())) / float(penalty.min())
    return np.float32 if bound <= FLOAT32_MAX_CONDITION else np.float64


def ease_inverse(
    x: csr_matrix, l2: float, dropout: float, dtype: type[np.floating] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(P, L): P = (G + diag(L))^-1 (symmetric; in dtype, by default ease_dtype's choice) and
    the penalty L (float64). One Cholesky factorisation and its inverse (LAPACK potrf, potri),
    in G's own buffer: no general inverse, no second items x items matrix."""
    x = csr_matrix(x)
    diagonal = np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel()  # diag(X'X)
    penalty = ease_penalty(diagonal, l2, dropout)
    chosen = dtype or ease_dtype(x, penalty)
    matrix = gram(x, chosen)
    matrix[np.diag_indices_from(matrix)] += penalty.astype(chosen)
    try:
        return spd_inverse(matrix), penalty
    except np.linalg.LinAlgError:
        if chosen is np.float64:
            raise
    # float32 lost positive definiteness (not seen in the measurements): float64 instead
    return ease_inverse(x, l2, dropout, np.float64)


def spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite C-ordered matrix, computed in its buffer
    (which it returns): Cholesky (potrf), then the inverse from the factor (potri), then the
    lower triangle copied to the upper. LinAlgError when the matrix is not positive definite."""
    potrf, potri = get_lapack_funcs(("potrf", "potri"), (matrix,))
    # matrix.T is the Fortran-ordered view of the same (symmetric) numbers: no copy; LAPACK's
    # upper triangle of it is the lower triangle of `matrix`
    factor, info = potrf(matrix.T, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"not positive definite (potrf info {info})")
    inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"singular (potri info {info})")
    out = np.asarray(inverse).T  # C order again: the valid numbers are its lower triangle
    if not np.shares_memory(out, matrix):  # LAPACK wrappers copy only on a layout mismatch
        matrix[...] = out
    _mirror_lower(matrix)
    return matrix


def _mirror_lower(matrix: np.ndarray, block: int = 1024) -> None:
    """Copy the lower triangle onto the upper one, in place, a block of rows at a time."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        square = matrix[start:stop, start:stop]
        lower = np.tril(square)
        square[...] = lower + np.tril(square, -1).T
        matrix[start:stop, stop:] = matrix[stop:, start:stop].T


def _ease_from_inverse(
    inverse: np.ndarray, penalty: np.ndarray, zero_diagonal: bool, in_place: bool
) -> np.ndarray:
    """W (float32) from P and L: zero diagonal W = -P / diag(P) (columns), diagonal 0; free
    diagonal W = I - P diagMat(L). in_place: P's buffer is reused when it is float32."""
    diagonal = np.diag(inverse).astype(np.float64)
    scale = -1.0 / diagonal if zero_diagonal else -penalty
    if in_place and inverse.dtype == np.float32:
        weights = inverse
        weights *= scale.astype(np.float32)[None, :]
    else:
        weights = np.multiply(inverse, scale[None, :], dtype=np.float32)
    index = np.diag_indices_from(weights)
    weights[index] = 0.0 if zero_diagonal else (1.0 - penalty * diagonal).astype(np.float32)
    return weights


class InverseCache:
    """The last EASE inverse: (matrix digest, l2, dropout) -> (P, L). One at a time."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.value: tuple[np.ndarray, np.ndarray] | None = None
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> tuple[np.ndarray, np.ndarray] | None:
        if self.value is not None and key == self.key:
            self.hits += 1
            return self.value
        self.misses += 1
        return None

    def put(self, key: tuple, inverse: np.ndarray, penalty: np.ndarray) -> None:
        self.key, self.value = key, (inverse, penalty)

    def clear(self) -> None:
        self.key, self.value = None, None


_SHARED: ContextVar[InverseCache | None] = ContextVar("ease_inverses", default=None)


@contextmanager
def shared_inverses() -> Iterator[InverseCache]:
    """While the block runs, EASE fits (ease and the hybrid's part) of the same matrix and
    penalty (l2, dropout) share one inverse: the two diagonal variants cost one factorisation.
    It holds one inverse at a time (items^2 x 4 or 8 bytes) and frees it when the block ends.
    Matrices are told apart by their contents (a digest of the CSR arrays)."""
    cache = InverseCache()
    token = _SHARED.set(cache)
    try:
        yield cache
    finally:
        cache.clear()
        _SHARED.reset(token)


def _digest(x: csr_matrix) -> str:
    """A digest of a CSR matrix's shape and arrays (its identity by content)."""
    x = csr_matrix(x)
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(x.shape, dtype=np.int64).tobytes())
    for part in (x.indptr, x.indices, x.data):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


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
    known = user_items[rows]
    history = spread(known @ weights, known)
    factors = spread(als.user_factors[rows] @ als.item_factors.T, known)
    w = p["hybrid_weight"]
    if weights.dtype != np.float32:
        weights = weights.astype(np.float32)
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


@dataclass(frozen=True)
class Shape:
    """What a fit's cost depends on: the training matrix's users, items (catalog included) and
    stored cells, its co-occurrences (the sum over users of their items squared), and the users
    scored afterwards with their stored cells; the items without interactions among n_items."""

    n_users: int
    n_items: int
    nnz: int
    cooccurrences: int
    n_scored: int = 0
    scored_nnz: int = 0
    n_cold: int = 0  # catalog items without interactions (W's rows imputed, models_ml.coldstart)


def fit_seconds(family: str, shape: Shape, p: dict[str, Any], shared: bool = False) -> float:
    """A priori seconds to fit `family` with the [train] values p (factors, iterations,
    bpr_factors, bpr_iterations, knn_neighbours: [train]'s names) on a matrix of this shape and
    score its n_scored users (one core, RATE): ALS ~ iterations x (nnz x factors + (users +
    items) x factors^2), BPR ~ iterations x nnz x factors, EASE ~ items^3 (+ X'X), item-kNN ~
    co-occurrences, the hybrid EASE + ALS. shared: EASE's inverse is already computed (the
    other diagonal variant, shared_inverses). The search scales it by its first measured fit."""
    s = shape
    setup = max(s.nnz, 1) / RATE["rows"]
    if family == "popularity":  # counts: the matrix's setup, then one ranking
        return setup
    if family == "als":
        return setup + _als_seconds(s, p["factors"], p["iterations"]) + _factor_scoring(s, p)
    if family == "bpr":
        fit = p["bpr_iterations"] * s.nnz * p["bpr_factors"] / RATE["bpr"]
        return setup + fit + _factor_scoring(s, {**p, "factors": p["bpr_factors"]})
    if family == "itemknn":
        return setup + s.cooccurrences / RATE["knn"] + _weight_scoring(s, p["knn_neighbours"])
    ease = _ease_seconds(s, shared) + _weight_scoring(s, s.n_items)
    if family == "ease":
        return setup + ease
    return (
        setup + ease + _als_seconds(s, p["factors"], p["iterations"]) + _factor_scoring(s, p)
    )  # the hybrid


def _als_seconds(s: Shape, factors: int, iterations: int) -> float:
    work = (s.n_users + s.n_items) * factors**2 + 2 * s.nnz * factors
    return iterations * (1.0 / RATE["als_iteration"] + 3 * work / RATE["als"])


def _ease_seconds(s: Shape, shared: bool) -> float:
    passes = 4 * s.n_items**2 / RATE["cells"]  # W from P, the mirror, copies
    if s.n_cold:  # cold items' rows and columns of W from their groups' (coldstart)
        passes += s.n_items**2 / RATE["impute"]
    if shared:
        return passes
    gram_s = min(
        s.n_users * float(s.n_items) ** 2 / RATE["gram_dense"],
        s.cooccurrences / RATE["gram_sparse"] + s.n_items**2 / RATE["todense"],
    )
    return gram_s + float(s.n_items) ** 3 / RATE["cholesky"] + passes


def _factor_scoring(s: Shape, p: dict[str, Any]) -> float:
    return s.n_scored * s.n_items * (p["factors"] + 10) / RATE["score_factors"]


def _weight_scoring(s: Shape, neighbours: int) -> float:
    dense = s.n_scored * s.n_items * 10 / RATE["score_factors"]
    return dense + s.scored_nnz * min(neighbours, s.n_items) / RATE["score_weights"]
