"""Top-k selection shared by the recommenders: dense scores per chunk of users, numpy only.

Slots beyond the items left (after excluding known items) are PAD_ITEM / PAD_SCORE. Ties are
broken by the lower item index, so rankings are deterministic.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

PAD_ITEM = -1
PAD_SCORE = -np.inf
CHUNK_CELLS = 1 << 23  # users x items scored at a time (32 MB of float32)


def top_k_dense(
    scores: np.ndarray, k: int, exclude: csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k column indices and scores of a dense (users x items) score matrix, best first;
    stored cells of exclude (same shape) are left out; -inf scores count as excluded.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None and exclude.nnz:
        coo = exclude.tocoo()
        scores[coo.row, coo.col] = -np.inf
    n_top = min(k, scores.shape[1])
    idx = np.full((len(scores), k), PAD_ITEM, dtype=np.int64)
    out = np.full((len(scores), k), PAD_SCORE, dtype=np.float32)
    if n_top and len(scores):
        candidates = np.argpartition(-scores, n_top - 1, axis=1)[:, :n_top]
        candidate_scores = np.take_along_axis(scores, candidates, axis=1)
        within = np.lexsort((candidates, -candidate_scores))  # best first, ties by index
        order = np.take_along_axis(candidates, within, axis=1)
        top_scores = np.take_along_axis(scores, order, axis=1)
        finite = np.isfinite(top_scores)
        idx[:, :n_top] = np.where(finite, order, PAD_ITEM)
        out[:, :n_top] = np.where(finite, top_scores, PAD_SCORE)
    return idx, out


def top_k(
    item_vectors: np.ndarray,
    user_vectors: np.ndarray,
    k: int,
    exclude: csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k items with the largest dot product, per user row.

    exclude: optional users x items CSR whose stored cells are left out. Both outputs are
    (n_users, k). Users are scored in chunks of about CHUNK_CELLS cells.
    """
    item_vectors = np.asarray(item_vectors, dtype=np.float32)
    user_vectors = np.asarray(user_vectors, dtype=np.float32)
    indices = np.full((len(user_vectors), k), PAD_ITEM, dtype=np.int64)
    scores = np.full((len(user_vectors), k), PAD_SCORE, dtype=np.float32)
    step = max(1, CHUNK_CELLS // max(1, item_vectors.shape[0]))
    for start in range(0, len(user_vectors), step):
        part = slice(start, start + step)
        dense = user_vectors[part] @ item_vectors.T
        part_exclude = None if exclude is None else exclude[part]
        indices[part], scores[part] = top_k_dense(dense, k, part_exclude)
    return indices, scores
