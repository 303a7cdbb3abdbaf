"""Cold start: what the recommender does when collaborative data is missing or thin.

- A user with no history gets recent popularity: items ranked by their time-decayed number of
  training interactions (half-life `recent_half_life_days`, counted back from the newest training
  interaction), so what is popular now outranks what was popular months ago.
- A user with very few interactions (at most `few_interactions` items) gets a blend favouring
  their categories: (1 - w) * the family's score scaled to [0, 1] per user + w * category score,
  where the category score of an item = the user's share of interactions in the item's category
  * the item's recent popularity relative to the most recently popular item of that category.
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
from recomart_core.schema import ITEM, TIME

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


def cold_item_groups(
    is_warm: np.ndarray, category_codes: np.ndarray, bands: np.ndarray
) -> tuple[np.ndarray, np.ndarray, csr_matrix]:
    """The cold items (is_warm False), the group each takes its values from (its (category,
    price band) when warm items share it, else its category; -1 for none), and the CSR
    (groups x items) whose row g averages the warm items of group g. Memory grows with the warm
    items and the groups, never with cold x warm items."""
    n_items = len(is_warm)
    warm, cold = np.flatnonzero(is_warm), np.flatnonzero(~is_warm)
    n_bands = int(bands.max()) + 2 if n_items else 1  # band -1 gets its own slot
    pair = category_codes * n_bands + (bands + 1)
    n_pairs = int(pair.max()) + 1 if n_items else 0
    n_groups = n_pairs + (int(category_codes.max()) + 1 if n_items else 0)
    rows = np.concatenate([pair[warm], n_pairs + category_codes[warm]])
    counts = np.bincount(rows, minlength=n_groups)
    averages = csr_matrix(
        (1.0 / counts[rows], (rows, np.concatenate([warm, warm]))), shape=(n_groups, n_items)
    )
    by_category = n_pairs + category_codes[cold]
    group = np.where(
        counts[pair[cold]] > 0, pair[cold], np.where(counts[by_category] > 0, by_category, -1)
    )
    return cold, group, averages


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
    cold, group, averages = cold_item_groups(is_warm, category_codes, bands)
    if len(cold):
        means = np.asarray(averages @ factors.astype(np.float64))
        imputed = np.zeros((len(cold), factors.shape[1]))
        found = group >= 0
        imputed[found] = means[group[found]]
        factors[cold] = (shrink * imputed).astype(np.float32)
    return factors


MAX_IMPUTED_CELLS = 20_000_000  # a sparse W gains at most this many cells for cold items


def impute_item_weights(
    weights: np.ndarray | csr_matrix,
    is_warm: np.ndarray,
    category_codes: np.ndarray,
    bands: np.ndarray,
    shrink: float,
) -> np.ndarray | csr_matrix:
    """An item-item W (models_ml.families) whose cold items' columns and rows are shrink * the
    mean columns and rows of their group's warm items (the groups of impute_item_factors). A
    sparse W (item-kNN) is left as it is when that would add more than MAX_IMPUTED_CELLS cells
    (a huge cold catalog): its cold items then score 0."""
    cold, group, averages = cold_item_groups(is_warm, category_codes, bands)
    found = group >= 0
    cold, group = cold[found], group[found]
    if not len(cold):
        return weights
    if isinstance(weights, np.ndarray):
        weights = weights.copy()
        weights[:, cold] = shrink * np.asarray(averages @ weights.T)[group].T
        weights[cold] = shrink * np.asarray(averages @ weights)[group]
        return weights
    column_means = csr_matrix(averages @ weights.T)  # groups x items
    row_means = csr_matrix(averages @ weights)
    cells = np.diff(column_means.indptr)[group].sum() + np.diff(row_means.indptr)[group].sum()
    if cells > MAX_IMPUTED_CELLS:
        return weights
    n_items = weights.shape[0]
    place = csr_matrix(
        (np.ones(len(cold)), (cold, np.arange(len(cold)))), shape=(n_items, len(cold))
    )
    weights = weights + (shrink * column_means[group]).T @ place.T
    weights = weights + place @ (shrink * row_means[group])
    return csr_matrix(weights, dtype=np.float32)


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
