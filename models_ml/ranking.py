"""Top-k selection shared by the recommenders: dense scores per chunk of users, numpy only.

Slots beyond the items left (after excluding known items) are PAD_ITEM / PAD_SCORE. Ties are
broken by the lower item index, so rankings are deterministic. A row's top k is found without
np.argpartition (several times slower): by the k-th largest of its block maxima on wide rows,
by np.partition's k-th value on narrow ones (each the faster there), then only the candidates
are sorted. Chunks of users are scored on up to THREADS threads (numpy's matrix product and
partition release the GIL; keep BLAS itself on one thread); each chunk writes its own rows, so
the result does not depend on the threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.sparse import csr_matrix

PAD_ITEM = -1
PAD_SCORE = -np.inf
CHUNK_CELLS = 1 << 23  # users x items scored at a time per thread (32 MB of float32)
THREADS = min(2, os.cpu_count() or 1)
BLOCKS_PER_TOP = 4  # a wide row is cut in 4 * n_top blocks
MIN_BLOCK = 64  # of at least this many items (narrower rows: np.partition)


def chunk_rows(n_items: int) -> int:
    """Users per chunk so that a chunk holds about CHUNK_CELLS scores."""
    return max(1, CHUNK_CELLS // max(1, n_items))


def for_chunks(n_rows: int, step: int, work: Callable[[slice], None]) -> None:
    """work(rows) for consecutive slices of step rows, on THREADS threads when there are several."""
    parts = [slice(start, start + step) for start in range(0, n_rows, step)]
    if len(parts) <= 1 or THREADS == 1:
        for part in parts:
            work(part)
        return
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(work, parts):  # re-raises a worker's exception
            pass


def mask_excluded(scores: np.ndarray, exclude: csr_matrix | None) -> None:
    """Set the stored cells of exclude (same shape as scores) to -inf, in place."""
    if exclude is not None and exclude.nnz:
        exclude = csr_matrix(exclude)
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf


def top_k_dense(
    scores: np.ndarray, k: int, exclude: csr_matrix | None = None, copy: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k column indices and scores of a dense (users x items) score matrix, best first;
    stored cells of exclude (same shape) are left out; -inf scores count as excluded.
    copy=False lets a float32 scores array be overwritten (a chunk nobody reads again).
    """
    scores = np.array(scores, dtype=np.float32, copy=copy or None)
    mask_excluded(scores, exclude)
    n_rows, n_items = scores.shape
    n_top = min(k, n_items)
    idx = np.full((n_rows, k), PAD_ITEM, dtype=np.int64)
    out = np.full((n_rows, k), PAD_SCORE, dtype=np.float32)
    if n_top and n_rows:
        order = _ordered_top(scores, n_top)
        top_scores = np.take_along_axis(scores, order, axis=1)
        finite = np.isfinite(top_scores)
        idx[:, :n_top] = np.where(finite, order, PAD_ITEM)
        out[:, :n_top] = np.where(finite, top_scores, PAD_SCORE)
    return idx, out


def _candidates(scores: np.ndarray, n_top: int) -> np.ndarray:
    """(rows, n_top) column indices holding each row's n_top largest scores (any order), ties
    at the n_top-th value going to the lower indices.

    The n_top-th largest value comes from np.partition (several times faster than
    np.argpartition); the cells at or above it are the candidates. A row with ties at that value
    (more cells than n_top) keeps those above it and the first tied ones.
    """
    n_rows, n_items = scores.shape
    if n_top == n_items:
        return np.broadcast_to(np.arange(n_items), (n_rows, n_items)).copy()
    threshold = np.partition(scores, n_items - n_top, axis=1)[:, n_items - n_top, None]
    chosen = scores >= threshold
    tied = np.flatnonzero(np.count_nonzero(chosen, axis=1) != n_top)
    if len(tied):
        rows, at = scores[tied], threshold[tied]
        above = rows > at
        equal = rows == at
        room = n_top - np.count_nonzero(above, axis=1, keepdims=True)
        chosen[tied] = above | (equal & (np.cumsum(equal, axis=1) <= room))
    return (np.flatnonzero(chosen) % n_items).reshape(n_rows, n_top)


def _ordered_top(scores: np.ndarray, n_top: int) -> np.ndarray:
    """The n_top best column indices per row, best first, ties by the lower index."""
    n_blocks = BLOCKS_PER_TOP * n_top
    if scores.shape[1] >= MIN_BLOCK * n_blocks:
        return _ordered_top_by_blocks(scores, n_top, n_blocks)
    candidates = _candidates(scores, n_top)
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    within = np.lexsort((candidates, -candidate_scores))
    return np.take_along_axis(candidates, within, axis=1)


def _ordered_top_by_blocks(scores: np.ndarray, n_top: int, n_blocks: int) -> np.ndarray:
    """_ordered_top for wide rows without copying them: the n_top-th largest of the rows' block
    maxima is at most the n_top-th largest score (those maxima are n_top cells at least as
    large), so every cell at or above it is a candidate: a few times n_top per row, found by
    one comparison, then ordered exactly (ties by the lower index)."""
    n_rows, n_items = scores.shape
    width = n_items // n_blocks
    maxima = np.empty((n_rows, n_blocks + 1), dtype=scores.dtype)
    maxima[:, :n_blocks] = scores[:, : n_blocks * width].reshape(n_rows, n_blocks, width).max(2)
    tail = scores[:, n_blocks * width :]
    maxima[:, n_blocks] = tail.max(axis=1) if tail.shape[1] else -np.inf
    threshold = np.partition(maxima, n_blocks + 1 - n_top, axis=1)[:, n_blocks + 1 - n_top]
    flat = np.flatnonzero(scores >= threshold[:, None])  # row-major; faster than np.nonzero
    rows, columns = np.divmod(flat, n_items)
    values = scores[rows, columns]
    order = np.lexsort((columns, -values, rows))  # per row: best first, ties by index
    rows, columns = rows[order], columns[order]
    counts = np.bincount(rows, minlength=n_rows)  # >= n_top per row
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < n_top
    out = np.empty((n_rows, n_top), dtype=np.int64)
    out[rows[keep], rank[keep]] = columns[keep]
    return out


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
    return top_k_of(
        lambda part: user_vectors[part] @ item_vectors.T,
        len(user_vectors), item_vectors.shape[0], k, exclude,
    )  # fmt: skip


def top_k_of(
    scores_of: Callable[[slice], np.ndarray],
    n_rows: int,
    n_items: int,
    k: int,
    exclude: csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k indices and scores of rows whose dense float32 scores scores_of(rows) gives (a
    fresh array, overwritten), computed in chunks of about CHUNK_CELLS cells on THREADS."""
    indices = np.full((n_rows, k), PAD_ITEM, dtype=np.int64)
    scores = np.full((n_rows, k), PAD_SCORE, dtype=np.float32)

    def work(part: slice) -> None:
        part_exclude = None if exclude is None else exclude[part]
        indices[part], scores[part] = top_k_dense(scores_of(part), k, part_exclude, copy=False)

    for_chunks(n_rows, chunk_rows(n_items), work)
    return indices, scores
