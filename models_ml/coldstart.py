"""Cold start: what the recommender does when collaborative data is missing or thin.

- A user with no history gets recent popularity: items ranked by their time-decayed number of
  training interactions (half-life `recent_half_life_days`, counted back from the newest training
  interaction), so what is popular now outranks what was popular months ago.
- A user with very few interactions (at most `few_interactions` items) gets a blend favouring
  their categories: (1 - w) * ALS score scaled to [0, 1] per user + w * category score, where the
  category score of an item = the user's share of interactions in the item's category * the item's
  recent popularity relative to the most recently popular item of that category.
- An item with no interactions (in the catalog, never seen in training) gets latent factors
  imputed from catalog similarity: the mean factors of the trained items with the same category
  and price band (falling back to the same category), times `cold_item_shrink` (< 1 so a cold item
  ranks below an equally similar item with evidence). It is then recommended to users whose liked
  items sit in that category and price band, and similar_items/explain work on it.

Pure functions over arrays; the recommender wires them in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from models_ml.matrix import without_returns
from recomart.core.schema import ITEM, TIME

UNKNOWN_CATEGORY = "unknown"


def recent_popularity(
    interactions: pd.DataFrame,
    half_life_days: float,
    reference_time: pd.Timestamp | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Item ids by time-decayed interaction count (descending, ties by id) and those scores.

    Each row counts 0.5 ** (age_days / half_life_days), age from reference_time (default: the
    newest row). half_life_days = 0 gives plain counts (global popularity). Returns do not
    count.
    """
    interactions = without_returns(interactions)
    items, inverse = np.unique(interactions[ITEM].to_numpy(dtype=np.int64), return_inverse=True)
    if half_life_days > 0:
        times = interactions[TIME]
        reference = times.max() if reference_time is None else reference_time
        age = (reference - times).dt.total_seconds().to_numpy(dtype=np.float64) / 86_400
        weights = np.power(0.5, np.maximum(age, 0.0) / half_life_days)
    else:
        weights = np.ones(len(inverse))
    scores = np.bincount(inverse, weights=weights, minlength=len(items))
    order = np.lexsort((items, -scores))
    return items[order], scores[order]


def price_bands(prices: np.ndarray, n_bands: int) -> np.ndarray:
    """Band 0..n_bands-1 of each price by catalog quantiles; -1 where the price is missing."""
    prices = np.asarray(prices, dtype=np.float64)
    bands = np.full(len(prices), -1, dtype=np.int64)
    known = np.isfinite(prices)
    if known.any() and n_bands > 1:
        edges = np.quantile(prices[known], np.linspace(0, 1, n_bands + 1)[1:-1])
        bands[known] = np.searchsorted(edges, prices[known], side="right")
    elif known.any():
        bands[known] = 0
    return bands


def impute_item_factors(
    item_factors: np.ndarray,
    is_warm: np.ndarray,
    category_codes: np.ndarray,
    bands: np.ndarray,
    shrink: float,
) -> np.ndarray:
    """Item factors where each cold row (is_warm False) is replaced by shrink * the mean factors
    of the warm items with the same (category, price band), else the same category, else 0.
    """
    factors = np.array(item_factors, dtype=np.float32, copy=True)
    cold = np.flatnonzero(~is_warm)
    if not len(cold):
        return factors
    warm = np.flatnonzero(is_warm)
    n_bands = int(bands.max()) + 2  # band -1 gets its own slot
    n_cats = int(category_codes.max()) + 1
    dims = factors.shape[1]

    def group_means(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
        counts = np.bincount(keys[warm], minlength=n_keys).astype(np.float64)
        sums = np.zeros((n_keys, dims))
        np.add.at(sums, keys[warm], factors[warm])
        return sums / np.maximum(counts, 1)[:, None], counts

    pair = category_codes * n_bands + (bands + 1)
    pair_means, pair_counts = group_means(pair, n_cats * n_bands)
    cat_means, cat_counts = group_means(category_codes, n_cats)
    use_pair = pair_counts[pair[cold]] > 0
    use_cat = ~use_pair & (cat_counts[category_codes[cold]] > 0)
    imputed = np.zeros((len(cold), dims))
    imputed[use_pair] = pair_means[pair[cold][use_pair]]
    imputed[use_cat] = cat_means[category_codes[cold][use_cat]]
    factors[cold] = (shrink * imputed).astype(np.float32)
    return factors


def category_onehot(category_codes: np.ndarray, n_categories: int) -> csr_matrix:
    """(n_items, n_categories) CSR: a 1 in each item's category column."""
    return csr_matrix(
        (np.ones(len(category_codes)), (np.arange(len(category_codes)), category_codes)),
        shape=(len(category_codes), n_categories),
    )


def category_affinity(user_items: csr_matrix, onehot: csr_matrix) -> np.ndarray:
    """(n_users, n_categories): each user's share of stored cells per item category (onehot:
    category_onehot of the items)."""
    user_items = csr_matrix(user_items)
    binary = csr_matrix(
        (np.ones(user_items.nnz), user_items.indices, user_items.indptr), shape=user_items.shape
    )
    counts = np.asarray((binary @ onehot).todense(), dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def within_category_popularity(scores: np.ndarray, category_codes: np.ndarray) -> np.ndarray:
    """Each item's popularity score / the highest score in its category (0..1)."""
    n_cats = int(category_codes.max()) + 1 if len(category_codes) else 0
    best = np.zeros(n_cats)
    np.maximum.at(best, category_codes, scores)
    return np.divide(
        scores, best[category_codes], out=np.zeros(len(scores)), where=best[category_codes] > 0
    )
