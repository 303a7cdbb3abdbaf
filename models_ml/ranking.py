"""Top-k selection shared by the recommenders, on implicit's compiled top-k routine.

implicit returns excluded (already known) items at the end of a list with the score
-FLT_MAX when too few items are left; here those slots become PAD_ITEM / PAD_SCORE.
"""

from __future__ import annotations

import numpy as np
from implicit.cpu.topk import topk
from scipy.sparse import csr_matrix

PAD_ITEM = -1
PAD_SCORE = -np.inf
_EXCLUDED_SCORE = np.finfo(np.float32).min


def mark_excluded(indices: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn implicit's excluded slots into PAD_ITEM indices and PAD_SCORE scores."""
    indices = np.asarray(indices, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    excluded = scores <= _EXCLUDED_SCORE
    return np.where(excluded, PAD_ITEM, indices), np.where(excluded, PAD_SCORE, scores)


def top_k(
    item_vectors: np.ndarray,
    user_vectors: np.ndarray,
    k: int,
    exclude: csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k items with the largest dot product, per user row.

    exclude: optional users x items CSR whose stored cells are left out. Both outputs are
    (n_users, k); slots beyond the items left are PAD_ITEM / PAD_SCORE.
    """
    n_items = item_vectors.shape[0]
    n_top = min(k, n_items)
    indices = np.full((len(user_vectors), k), PAD_ITEM, dtype=np.int64)
    scores = np.full((len(user_vectors), k), PAD_SCORE, dtype=np.float32)
    if len(user_vectors) and n_top:
        found, found_scores = topk(
            np.ascontiguousarray(item_vectors, dtype=np.float32),
            np.ascontiguousarray(user_vectors, dtype=np.float32),
            n_top,
            filter_query_items=exclude,
        )
        indices[:, :n_top], scores[:, :n_top] = mark_excluded(found, found_scores)
    return indices, scores
