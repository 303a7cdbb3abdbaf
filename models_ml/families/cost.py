"""A priori seconds of a fit and its scoring (models_ml.families.fit_seconds), from the
matrix's shape and the family's settings: the parts each family's cost_terms adds up, and the
rates they divide by."""

from __future__ import annotations

from dataclasses import dataclass

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


def als_seconds(s: Shape, factors: int, iterations: int) -> float:
    """Seconds of implicit's ALS: iterations x (nnz x factors + (users + items) x factors^2)."""
    work = (s.n_users + s.n_items) * factors**2 + 2 * s.nnz * factors
    return iterations * (1.0 / RATE["als_iteration"] + 3 * work / RATE["als"])


def ease_seconds(s: Shape, shared: bool) -> float:
    """Seconds of EASE's W: X'X, the Cholesky inverse (items^3), the passes over W; shared:
    the inverse is already computed (the other diagonal variant, shared_inverses)."""
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


def factor_scoring(s: Shape, factors: int) -> float:
    """Seconds to score n_scored users by U . V and take their top k."""
    return s.n_scored * s.n_items * (factors + 10) / RATE["score_factors"]


def weight_scoring(s: Shape, neighbours: int) -> float:
    """Seconds to score n_scored users by x_u @ W (neighbours per item) and take their top k."""
    dense = s.n_scored * s.n_items * 10 / RATE["score_factors"]
    return dense + s.scored_nnz * min(neighbours, s.n_items) / RATE["score_weights"]


def setup_seconds(s: Shape) -> float:
    """Seconds to turn the rows into the confidence matrix and the cold-start arrays."""
    return max(s.nnz, 1) / RATE["rows"]
