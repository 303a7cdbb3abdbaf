"""Top-k selection (models_ml.ranking) and the popularity shortcut against a plain sort."""

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse import random as sparse_random

from models_ml import ranking
from models_ml.arrays import unique_sorted
from models_ml.baselines import first_free_positions


def reference_top_k(scores: np.ndarray, k: int, exclude: csr_matrix | None):
    """Sort every row by (-score, index); excluded and -inf cells become padding."""
    scores = scores.astype(np.float32).copy()
    if exclude is not None:
        scores[exclude.toarray() != 0] = -np.inf
    idx = np.full((len(scores), k), ranking.PAD_ITEM)
    out = np.full((len(scores), k), ranking.PAD_SCORE, dtype=np.float32)
    for row, values in enumerate(scores):
        order = sorted(range(len(values)), key=lambda j: (-values[j], j))[:k]
        for slot, j in enumerate(order):
            if np.isfinite(values[j]):
                idx[row, slot], out[row, slot] = j, values[j]
    return idx, out


@pytest.mark.parametrize("threads", [1, 2])
def test_top_k_matches_a_full_sort_across_chunks_and_threads(monkeypatch, threads):
    monkeypatch.setattr(ranking, "CHUNK_CELLS", 7 * 50)  # 7 users per chunk: many chunks
    monkeypatch.setattr(ranking, "THREADS", threads)
    rng = np.random.default_rng(3)
    items, users = rng.normal(size=(50, 4)), rng.normal(size=(61, 4))
    exclude = sparse_random(61, 50, density=0.3, format="csr", random_state=4)
    idx, scores = ranking.top_k(items, users, 8, exclude)
    want_idx, want_scores = reference_top_k(users.astype(np.float32) @ items.astype(np.float32).T,
                                            8, exclude)  # fmt: skip
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)


def test_ties_go_to_the_lower_index_and_short_rows_are_padded():
    scores = np.array(
        [
            [1.0, 3.0, 3.0, 3.0, 0.0, 3.0],  # four tied at the top: more than k at the threshold
            [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],  # all tied
            [5.0, -np.inf, -np.inf, -np.inf, -np.inf, 4.0],  # two left
        ]
    )
    exclude = csr_matrix(([1.0], ([1], [0])), shape=(3, 6))
    idx, out = ranking.top_k_dense(scores, 3, exclude)
    np.testing.assert_array_equal(idx, [[1, 2, 3], [1, 2, 3], [0, 5, -1]])
    np.testing.assert_array_equal(out[2], np.array([5.0, 4.0, -np.inf], dtype=np.float32))


def test_top_k_dense_leaves_its_input_alone_unless_told():
    scores = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    exclude = csr_matrix(([1.0], ([0], [2])), shape=(1, 3))
    ranking.top_k_dense(scores, 1, exclude)
    assert scores[0, 2] == 3.0
    ranking.top_k_dense(scores, 1, exclude, copy=False)
    assert scores[0, 2] == -np.inf


def test_first_free_positions_is_the_ranking_minus_known_items():
    rng = np.random.default_rng(5)
    n_users, n_items, k = 40, 30, 6
    dense = rng.random((n_users, n_items)) < rng.random((n_users, 1))  # 0 to all items known
    dense[0] = True  # nothing left
    dense[1] = False  # nothing known
    dense[2, : n_items - 2] = True  # two left, at the end
    got = first_free_positions(csr_matrix(dense.astype(np.float32)), k)
    for row in range(n_users):
        free = [j for j in range(n_items) if not dense[row, j]][:k]
        assert got[row].tolist() == free + [ranking.PAD_ITEM] * (k - len(free)), row


def test_wide_rows_take_the_block_path_and_still_match_a_full_sort():
    rng = np.random.default_rng(9)
    scores = rng.integers(0, 40, size=(30, 4000)).astype(np.float32)  # many ties
    scores[3, :] = 1.0  # all tied
    scores[4, 5:] = -np.inf  # five finite scores only
    exclude = sparse_random(30, 4000, density=0.1, format="csr", random_state=3)
    assert scores.shape[1] >= ranking.MIN_BLOCK * ranking.BLOCKS_PER_TOP * 12
    idx, out = ranking.top_k_dense(scores, 12, exclude)
    want_idx, want_out = reference_top_k(scores, 12, exclude)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(out, want_out)


def test_unique_sorted_is_np_unique() -> None:
    rng = np.random.default_rng(4)
    for values in (rng.integers(0, 50, 1000), rng.integers(-(2**40), 2**40, 300), [], [7]):
        np.testing.assert_array_equal(unique_sorted(np.array(values)), np.unique(values))
