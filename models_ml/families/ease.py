"""The ease family: EASE / EDLAE / DLAE, the closed-form item-item autoencoder on the Gram
matrix G = X'X (Steck 2019, 2020), with L = l2 + dropout / (1 - dropout) * diag(G) and
P = (G + diag(L))^-1:
    zero diagonal (EASE, with dropout: EDLAE): W = I - P diagMat(1 / diag(P)), diagonal 0;
    free diagonal (DLAE): W = (G + diag(L))^-1 G = I - P diagMat(L).
W is dense: catalogs up to `max_items` (memory grows with items squared). The hybrid's EASE
part uses the same weights. The measurements behind the float32 / Cholesky choices are in
models_ml.families' docstring."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.linalg import get_blas_funcs, get_lapack_funcs
from scipy.sparse import csr_matrix

from models_ml.families.cost import RATE, Shape, ease_seconds, weight_scoring
from models_ml.families.kinds import ItemItemModel
from models_ml.recommender import Scorer

FLOAT64_BYTES = 8
FLOAT32_MAX_CONDITION = 1e5  # EASE in float32 up to this condition bound (ease_dtype)
GRAM_BLOCK_CELLS = 1 << 24  # users x items cells made dense at a time (gram)


class EASESettings(BaseModel):
    """[train.ease]: the penalty l2, dropout (EDLAE), a zero or free diagonal, and the largest
    catalog the dense W is built for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    l2: float = Field(500.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    zero_diagonal: bool = True
    # W is dense: 3 x items^2 x 8 bytes while fitting (50,000 items: 60 GB)
    max_items: int = Field(20_000, ge=1, le=50_000)


def ease_weights(x: csr_matrix, settings: EASESettings) -> np.ndarray:
    """EASE / EDLAE / DLAE item-item weights (the module docstring), float32; ValueError above
    max_items items. Inside `shared_inverses()`, the inverse of the last matrix and penalty
    is reused (the other diagonal variant costs no factorisation)."""
    n_items = x.shape[1]
    if n_items > settings.max_items:
        gigabytes = 3 * n_items**2 * FLOAT64_BYTES / 1e9
        raise ValueError(
            f"family 'ease' needs dense {n_items} x {n_items} item matrices (about "
            f"{gigabytes:.1f} GB): above [train.ease] max_items = {settings.max_items}; use "
            f"family 'als' or 'itemknn' for this catalog"
        )
    l2, dropout = float(settings.l2), float(settings.dropout)
    zero_diagonal = settings.zero_diagonal
    cache = _SHARED.get()
    if cache is None:
        inverse, penalty = ease_inverse(x, l2, dropout)
        return _ease_from_inverse(inverse, penalty, zero_diagonal, in_place=True)
    key = (_digest(x), l2, dropout)
    found = cache.get(key)
    if found is None:
        cache.clear()  # one inverse at a time: free the last before computing the next
        found = ease_inverse(x, l2, dropout)
        cache.put(key, *found)
    return _ease_from_inverse(*found, zero_diagonal, in_place=False)


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


def empty_factors(family: str, user_items: csr_matrix, weights) -> Scorer:
    """A Scorer of W alone (no factors)."""
    n_users, n_items = user_items.shape
    return Scorer(
        family,
        np.zeros((n_users, 0), dtype=np.float32),
        np.zeros((n_items, 0), dtype=np.float32),
        weights,
    )


class EASE(ItemItemModel):
    """EASE / EDLAE / DLAE: a dense W (the module docstring), no factors."""

    name = "ease"
    title = "EASE / DLAE"
    description = "collaborative filtering (EASE / DLAE)"
    Settings = EASESettings
    dense = True
    user_scaled = ("l2",)  # G = X'X sums over users
    free_setting = "zero_diagonal"  # both variants from one inverse (shared_inverses)
    flat_keys = MappingProxyType(
        {
            "ease_l2": "l2",
            "ease_dropout": "dropout",
            "ease_zero_diagonal": "zero_diagonal",
            "ease_max_items": "max_items",
        }
    )

    def fit_scorer(self, user_items: csr_matrix, popularity: np.ndarray) -> Scorer:
        alpha = self.common.weighting.alpha
        return empty_factors(self.name, user_items, ease_weights(user_items / alpha, self.settings))

    @classmethod
    def max_items(cls, settings: BaseModel) -> int | None:
        return settings.max_items

    @classmethod
    def cost_terms(cls, shape: Shape, settings: EASESettings, shared: bool) -> tuple[float, ...]:
        return (ease_seconds(shape, shared) + weight_scoring(shape, shape.n_items),)
