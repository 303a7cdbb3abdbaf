"""Ranking metrics at k: plain functions of (recommended ids per user, relevant ids per user, k).

Conventions (the ones of Microsoft Recommenders and most papers):
- precision@k = hits in the top k / k (k stays the denominator when a list is shorter than k);
- recall@k = hits in the top k / |relevant| (the standard definition, not / min(|relevant|, k),
  so a user with more than k relevant items cannot reach 1.0);
- ndcg@k = DCG / IDCG with binary relevance and a log2 discount: a hit at rank r (1-based) adds
  1 / log2(r + 1); IDCG is the DCG of min(|relevant|, k) hits at the top ranks.
- map@k = mean over users of AP@k = (sum over hits at rank r of precision@r) / min(|relevant|, k);
- hit_rate@k = share of users with at least one hit in the top k;
- catalog_coverage@k = distinct items in all top-k lists / catalog size.
A user with no relevant item scores 0 on recall, NDCG and AP (evaluate() never passes such users).
Rating metrics: rmse = sqrt(mean((predicted - actual)^2)), mae = mean(|predicted - actual|).
Recommended lists may be padded with -1 (or any id that is never relevant).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from models_ml.arrays import unique_sorted

PAD = -1


def _as_matrix(recommended: np.ndarray | Sequence[Sequence[int]], k: int) -> np.ndarray:
    """Recommended ids as an int64 (n_users, k) array, cut to k and padded with PAD."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if isinstance(recommended, np.ndarray) and recommended.ndim == 2:
        top = recommended[:, :k].astype(np.int64)
    else:
        top = np.full((len(recommended), k), PAD, dtype=np.int64)
        for row, items in enumerate(recommended):
            items = list(items)[:k]
            top[row, : len(items)] = items
    if top.shape[1] < k:
        top = np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=PAD)
    return top


def hits_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> np.ndarray:
    """Boolean (n_users, k): is the item at each rank in that user's relevant set."""
    top = _as_matrix(recommended, k)
    if len(relevant) != len(top):
        raise ValueError(f"{len(top)} recommendation lists but {len(relevant)} relevant sets")
    sizes = np.fromiter((len(items) for items in relevant), dtype=np.int64, count=len(relevant))
    rel_users = np.repeat(np.arange(len(relevant), dtype=np.int64), sizes)
    rel_items = np.fromiter(
        (item for items in relevant for item in items), dtype=np.int64, count=int(sizes.sum())
    )
    # Encode (user, item) pairs as one int64 key and look the recommended pairs up in the relevant.
    codes, inverse = np.unique(np.concatenate([rel_items, top.ravel()]), return_inverse=True)
    rel_keys = unique_sorted(rel_users * len(codes) + inverse[: len(rel_items)])
    rec_users = np.repeat(np.arange(len(top), dtype=np.int64), k)
    rec_keys = rec_users * len(codes) + inverse[len(rel_items) :]
    found = np.isin(rec_keys, rel_keys) & (top.ravel() != PAD)
    return found.reshape(top.shape)


def _n_relevant(relevant: Sequence[Collection[int]]) -> np.ndarray:
    return np.fromiter((len(items) for items in relevant), dtype=np.float64, count=len(relevant))


def _precision(hits: np.ndarray, k: int) -> np.ndarray:
    return hits.sum(axis=1) / k


def _recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    return np.divide(
        hits.sum(axis=1), n_relevant, out=np.zeros(len(n_relevant)), where=n_relevant > 0
    )


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))  # rank r (1-based) -> 1 / log2(r + 1)


def _ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    discounts = _discounts(k)
    dcg = hits @ discounts
    ideal_hits = np.minimum(n_relevant, k).astype(np.int64)
    idcg = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_hits]
    return np.divide(dcg, idcg, out=np.zeros(len(idcg)), where=idcg > 0)


def dcg_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> np.ndarray:
    """Per-user DCG@k: the sum over hits at rank r (1-based) of 1 / log2(r + 1)."""
    return hits_at_k(recommended, relevant, k) @ _discounts(k)


def precision_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> np.ndarray:
    """Per-user precision@k: hits in the top k / k."""
    return _precision(hits_at_k(recommended, relevant, k), k)


def recall_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> np.ndarray:
    """Per-user recall@k: hits in the top k / |relevant| (0 when nothing is relevant)."""
    return _recall(hits_at_k(recommended, relevant, k), _n_relevant(relevant))


def ndcg_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> np.ndarray:
    """Per-user NDCG@k, binary relevance, log2 discount, IDCG over min(|relevant|, k) hits."""
    return _ndcg(hits_at_k(recommended, relevant, k), _n_relevant(relevant), k)


def _average_precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    denominator = np.minimum(n_relevant, k)
    return np.divide(
        (precision_at_rank * hits).sum(axis=1),
        denominator,
        out=np.zeros(len(denominator)),
        where=denominator > 0,
    )


def average_precision_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> np.ndarray:
    """Per-user AP@k: sum of precision@r over the ranks r of hits / min(|relevant|, k)."""
    return _average_precision(hits_at_k(recommended, relevant, k), _n_relevant(relevant), k)


def map_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> float:
    """Mean over users of AP@k."""
    return float(np.mean(average_precision_at_k(recommended, relevant, k)))


def hit_rate_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> float:
    """Share of users with at least one relevant item in their top k."""
    return float(np.mean(hits_at_k(recommended, relevant, k).any(axis=1)))


def catalog_coverage_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]], n_catalog_items: int, k: int
) -> float:
    """Distinct items over all users' top-k lists (padding excluded) / n_catalog_items."""
    top = _as_matrix(recommended, k)
    if n_catalog_items <= 0:
        raise ValueError(f"n_catalog_items must be positive, got {n_catalog_items}")
    distinct = unique_sorted(top[top != PAD])
    return len(distinct) / n_catalog_items


def item_popularity(
    train_users: np.ndarray, train_items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted item ids of the training rows and the share of training users who have each
    (ids: non-negative codes below 2^31)."""
    pairs = unique_sorted((np.asarray(train_users, np.int64) << 32) | np.asarray(train_items))
    items, counts = np.unique(pairs & 0xFFFFFFFF, return_counts=True)
    return items, counts / max(1, len(unique_sorted(pairs >> 32)))


def _shares(top: np.ndarray, items: np.ndarray, shares: np.ndarray, floor: float) -> np.ndarray:
    """The popularity share of each recommended id (padding: NaN); unseen items get floor."""
    out = np.full(top.shape, np.nan)
    valid = top != PAD
    pos = np.clip(np.searchsorted(items, top[valid]), 0, max(0, len(items) - 1))
    found = items[pos] == top[valid] if len(items) else np.zeros(len(pos), dtype=bool)
    out[valid] = np.where(found, shares[pos] if len(items) else floor, floor)
    return out


def novelty_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    items: np.ndarray,
    shares: np.ndarray,
    n_users: int,
    k: int,
) -> float:
    """Mean self-information -log2(share of training users with the item) over the top-k lists
    (padding excluded; an item no training user has counts as 1 user). Higher: less obvious
    items. items, shares: item_popularity of the training rows; n_users: training users."""
    values = _shares(_as_matrix(recommended, k), items, shares, 1.0 / max(1, n_users))
    return float(np.nanmean(-np.log2(values))) if np.isfinite(values).any() else 0.0


def popularity_bias_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    items: np.ndarray,
    shares: np.ndarray,
    k: int,
) -> float:
    """Average recommendation popularity: the mean share of training users who have a
    recommended item, over the top-k lists (padding excluded). Higher: more popularity bias."""
    values = _shares(_as_matrix(recommended, k), items, shares, 0.0)
    return float(np.nanmean(values)) if np.isfinite(values).any() else 0.0


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    if not len(diff):
        raise ValueError("no ratings to score")
    return float(np.sqrt(np.mean(diff**2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    if not len(diff):
        raise ValueError("no ratings to score")
    return float(np.mean(np.abs(diff)))


def mean_metrics_at_k(
    recommended: np.ndarray | Sequence[Sequence[int]],
    relevant: Sequence[Collection[int]],
    k: int,
) -> dict[str, float]:
    """Means over users keyed '<metric>_at_<k>': precision, recall, ndcg, map, hit_rate."""
    return metrics_from_hits(hits_at_k(recommended, relevant, k), _n_relevant(relevant), k)


def per_user_from_hits(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user values keyed '<metric>_at_<k>' from a (n_users, >= k) hits matrix (first k
    columns): precision, recall, ndcg, map (the user's AP@k), hit_rate (1.0 or 0.0)."""
    hits = hits[:, :k]
    return {
        f"precision_at_{k}": _precision(hits, k),
        f"recall_at_{k}": _recall(hits, n_relevant),
        f"ndcg_at_{k}": _ndcg(hits, n_relevant, k),
        f"map_at_{k}": _average_precision(hits, n_relevant, k),
        f"hit_rate_at_{k}": hits.any(axis=1).astype(np.float64),
    }


def metrics_from_hits(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, float]:
    """mean_metrics_at_k from a (n_users, >= k) hits matrix: its first k columns count."""
    return {
        name: float(np.mean(values))
        for name, values in per_user_from_hits(hits, n_relevant, k).items()
    }
