"""The user x item confidence matrix that every family fits, and the raw id <-> index maps.

Confidence of a (user, item) cell, summed over the pair's interaction rows:

    weight(row) = event_weights[event_type] * rating / rating_max * amount(row) * recency(row)
    amount(row) = log2(1 + |quantity|) or log2(1 + |value|)   (weight_by; 1 for "events")
    recency(row) = 0.5 ** (age_days / recency_half_life_days)   (1 when the half-life is 0)

where a missing rating (an implicit-feedback log) counts as rating_max, a missing amount as 1,
and age_days counts back from the user's own newest training interaction: what a user did last
weighs most, and a user active years ago keeps their history (a decay from one global time would
erase it: on tests/layouts.py's MovieLens-latest data, 22 years, it left ALS below popularity).
A return has a negative event weight: a cell whose sum is negative is negative feedback
(implicit's ALS reads it as "disliked", with confidence |value|), one that sums to 0 (bought and
returned) is as if unobserved. Scheme "linear": confidence = alpha * summed weight. Scheme
"bm25": the positive cells get alpha * BM25(summed weight) (implicit's bm25_weight with k1 and
b: frequent items and heavy users weigh less), the negative ones alpha * summed weight.

The repeat policy ([train] repeatable_events) lives here too, the lowest place every
recommender and the evaluation share: excluded_pairs (which known items are never recommended
to a user again) and repeat_scores (how strongly a known item that may come back does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from implicit.nearest_neighbours import bm25_weight
from scipy.sparse import csr_matrix

from models_ml.arrays import unique_sorted
from recomart_core.schema import (
    DEFAULT_EVENT,
    EVENT,
    ITEM,
    PURCHASE,
    QUANTITY,
    RATING,
    RETURN_EVENT,
    TIME,
    USER,
    VALUE,
)
from recomart_core.settings import Ratings, Train

DEFAULTS = Train()  # the one set of defaults: recomart_core.settings [train]
RATING_MAX = Ratings().max

UNKNOWN = -1
SCHEMES = ("linear", "bm25")
WEIGHT_BY = {"events": None, "quantity": QUANTITY, "value": VALUE}


@dataclass(frozen=True)
class IdMap:
    """Sorted unique raw ids: the position of an id in `ids` is its matrix index."""

    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, raw_ids: np.ndarray | list[int]) -> np.ndarray:
        """Matrix index of each raw id, UNKNOWN (-1) for ids not in the map."""
        raw = np.asarray(raw_ids, dtype=np.int64)
        pos = np.searchsorted(self.ids, raw)
        inside = pos < len(self.ids)
        found = np.zeros(raw.shape, dtype=bool)
        found[inside] = self.ids[pos[inside]] == raw[inside]
        return np.where(found, pos, UNKNOWN)


def default_event_weights() -> dict[str, float]:
    """[train.event_weights] as recomart_core.settings declares them."""
    return dict(DEFAULTS.event_weights)


@dataclass(frozen=True)
class Weighting:
    """How interaction rows become confidences (the [train] keys of the same names, with their
    defaults)."""

    alpha: float = DEFAULTS.alpha
    event_weights: Mapping[str, float] = field(default_factory=default_event_weights)
    scheme: str = DEFAULTS.weighting  # "linear" or "bm25"
    recency_half_life_days: float = DEFAULTS.recency_half_life_days  # 0: no time decay
    bm25_k1: float = DEFAULTS.bm25_k1
    bm25_b: float = DEFAULTS.bm25_b
    rating_max: float = RATING_MAX  # [ratings] max: a rating of rating_max weighs 1
    weight_by: str = DEFAULTS.weight_by  # events | quantity | value

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"weighting scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if self.alpha <= 0 or self.recency_half_life_days < 0:
            raise ValueError("alpha must be positive and recency_half_life_days >= 0")
        if self.weight_by not in WEIGHT_BY or self.rating_max <= 0:
            raise ValueError(
                f"weight_by must be one of {tuple(WEIGHT_BY)} (got {self.weight_by!r}) and"
                f" rating_max positive (got {self.rating_max})"
            )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["event_weights"] = dict(self.event_weights)
        return out


def interaction_weights(
    interactions: pd.DataFrame,
    event_weights: Mapping[str, float],
    recency_half_life_days: float = 0.0,
    rating_max: float = RATING_MAX,
    weight_by: str = "events",
) -> np.ndarray:
    """Per row: event_weights[event_type] * rating / rating_max * amount * recency decay, as
    float64 (the module docstring has the formula).

    Without an event_type column every row is a DEFAULT_EVENT (a view); a missing rating counts
    as rating_max;
    the decay needs event_at and counts each row's age from its user's newest row.
    """
    wrong = {
        event: weight
        for event, weight in event_weights.items()
        if (weight > 0 if event == RETURN_EVENT else weight <= 0)
    }
    if wrong:
        raise ValueError(f"event weights must be positive, a return's 0 or negative: {wrong}")
    if EVENT in interactions:
        per_event = interactions[EVENT].map(dict(event_weights)).to_numpy(dtype=np.float64)
    else:
        per_event = np.full(len(interactions), float(event_weights.get(DEFAULT_EVENT, 1.0)))
    missing = np.isnan(per_event)
    if missing.any():
        unknown = sorted(set(interactions.loc[missing, EVENT].astype(str)))
        raise ValueError(f"no event weight for event types {unknown}")
    if RATING in interactions:
        ratings = interactions[RATING].to_numpy(dtype=np.float64, na_value=np.nan)
        weights = per_event * np.where(np.isnan(ratings), rating_max, ratings) / rating_max
    else:
        weights = per_event
    amount_column = WEIGHT_BY[weight_by]
    if amount_column is not None:
        if amount_column not in interactions:
            raise ValueError(f"weight_by = {weight_by!r} needs a {amount_column} column")
        amounts = np.abs(interactions[amount_column].to_numpy(dtype=np.float64, na_value=np.nan))
        weights = weights * np.where(np.isnan(amounts), 1.0, np.log2(1.0 + amounts))
    if recency_half_life_days > 0:
        weights = weights * np.power(0.5, age_days(interactions) / recency_half_life_days)
    return weights


def age_days(interactions: pd.DataFrame) -> np.ndarray:
    """Per row: days from the row's event_at back from its user's newest event_at (float64, >= 0);
    zeros without an event_at column."""
    if TIME not in interactions:
        return np.zeros(len(interactions))
    times = interactions[TIME]
    newest = times.groupby(interactions[USER].to_numpy(), sort=False).transform("max")
    return (newest - times).dt.total_seconds().to_numpy(dtype=np.float64) / 86_400


def confidence_matrix(
    interactions: pd.DataFrame,
    event_weights: Mapping[str, float] | None = None,
    alpha: float = DEFAULTS.alpha,
    *,
    weighting: Weighting | None = None,
    item_ids: np.ndarray | None = None,
) -> tuple[csr_matrix, IdMap, IdMap]:
    """Users x items float32 CSR of confidences, with the user and item id maps.

    Either (event_weights, alpha) for the linear scheme without decay (event_weights None: the
    [train] defaults), or a Weighting.
    item_ids: the column universe (e.g. the whole catalog, so items without interactions get
    empty columns); default: the items of the rows. Rows sharing a (user, item) pair are summed.
    implicit's ALS reads each stored value as the confidence of a positive preference.
    """
    if interactions.empty:
        raise ValueError("no interactions to build a matrix from")
    if weighting is None:
        weighting = Weighting(
            alpha=alpha,
            event_weights=event_weights or default_event_weights(),
            scheme="linear",
            recency_half_life_days=0.0,
        )
    user_ids, rows = np.unique(interactions[USER].to_numpy(dtype=np.int64), return_inverse=True)
    raw_items = interactions[ITEM].to_numpy(dtype=np.int64)
    if item_ids is None:
        items, cols = np.unique(raw_items, return_inverse=True)
    else:
        items = unique_sorted(np.concatenate([np.asarray(item_ids, dtype=np.int64), raw_items]))
        cols = np.searchsorted(items, raw_items)
    values = interaction_weights(
        interactions,
        weighting.event_weights,
        weighting.recency_half_life_days,
        weighting.rating_max,
        weighting.weight_by,
    )
    matrix = csr_matrix((values, (rows, cols)), shape=(len(user_ids), len(items)))
    matrix.sum_duplicates()
    matrix.eliminate_zeros()  # bought and returned: as if unobserved
    if weighting.scheme == "bm25":
        matrix = bm25_cells(matrix, weighting.bm25_k1, weighting.bm25_b)
    matrix = (weighting.alpha * matrix).astype(np.float32)
    return csr_matrix(matrix), IdMap(user_ids), IdMap(items)


def bm25_cells(matrix: csr_matrix, k1: float, b: float) -> csr_matrix:
    """The positive cells BM25-weighted (implicit's bm25_weight), the negative ones as they are."""
    matrix = csr_matrix(matrix)
    negative = matrix.multiply(matrix < 0).tocsr()
    positive = matrix - negative
    positive.eliminate_zeros()
    weighted = bm25_weight(positive, K1=k1, B=b).tocsr()
    weighted.data = np.maximum(weighted.data, 1e-6)  # an item everyone has gets idf <= 0
    return csr_matrix(weighted + negative)


def without_returns(interactions: pd.DataFrame) -> pd.DataFrame:
    """The rows that are not returns: what popularity counts and evaluation calls relevant."""
    if EVENT not in interactions:
        return interactions
    keep = (interactions[EVENT] != RETURN_EVENT).to_numpy()
    return interactions if keep.all() else interactions.loc[keep]


def pair_keys(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """One int64 per (user code, item code): codes are below 2^31."""
    return (np.asarray(users).astype(np.int64) << 32) | np.asarray(items).astype(np.int64)


def _events(interactions: pd.DataFrame) -> pd.Series:
    """The rows' event types; DEFAULT_EVENT (a view) for a frame without the column."""
    if EVENT in interactions:
        return interactions[EVENT]
    return pd.Series(DEFAULT_EVENT, index=interactions.index)


def excluded_pairs(interactions: pd.DataFrame, repeatable: Sequence[str] = ()) -> pd.DataFrame:
    """The rows whose (user, item) pair may never be recommended to that user again, the repeat
    policy of [train] repeatable_events: a pair is excluded when any of its rows is here.

    No repeatable event type (the default): every row, every known pair is excluded. Else the
    rows of the other event types, returns always included (a returned item never comes back).
    A frame without event_type holds views (DEFAULT_EVENT), as in interaction_weights. The one
    rule that recommenders (their exclude_known) and evaluation (relevant items) both use.
    """
    allowed = [event for event in repeatable if event != RETURN_EVENT]
    if not allowed:
        return interactions
    keep = ~_events(interactions).isin(allowed).to_numpy()
    return interactions if keep.all() else interactions.loc[keep]


def last_purchases(interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, item ids, seconds since the epoch of the pair's last purchase) of the pairs
    with a purchase row: what the rules' exclude_bought reads (models_ml.rules). Empty arrays
    without event types or times (nothing is known to be bought)."""
    empty = np.zeros(0, dtype=np.int64)
    if EVENT not in interactions or TIME not in interactions or interactions.empty:
        return empty, empty, np.zeros(0)
    bought = interactions.loc[interactions[EVENT] == PURCHASE, [USER, ITEM, TIME]]
    last = pd.to_datetime(bought.groupby([USER, ITEM], sort=True)[TIME].max(), utc=True)
    seconds = (last - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    return (
        last.index.get_level_values(0).to_numpy(dtype=np.int64),
        last.index.get_level_values(1).to_numpy(dtype=np.int64),
        seconds,
    )


def repeat_scores(
    interactions: pd.DataFrame,
    repeatable: Sequence[str],
    event_weights: Mapping[str, float],
    half_life_days: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, item ids, repeat scores) of the pairs that are not excluded (excluded_pairs),
    sorted by (user, item), only positive sums; empty arrays when nothing is repeatable.

        repeat(u, j) = sum over u's rows on j of event_weights[event] * 0.5 ** (age_days / h)

    with h = half_life_days ([train] repeat_half_life_days) and age_days counted back from the
    user's newest row of any kind (age_days, the recency convention); no event_at: age 0.
    Ratings and amounts do not enter: what the user did, how often, how lately.
    """
    empty = np.zeros(0, dtype=np.int64)
    allowed = [event for event in repeatable if event != RETURN_EVENT]
    if not allowed or interactions.empty:
        return empty, empty, np.zeros(0)
    if half_life_days <= 0:
        raise ValueError(f"repeat_half_life_days must be positive, got {half_life_days}")
    events = _events(interactions)
    keys = pair_keys(
        interactions[USER].to_numpy(dtype=np.int64), interactions[ITEM].to_numpy(dtype=np.int64)
    )
    repeatable_row = events.isin(allowed).to_numpy()
    keep = repeatable_row & ~np.isin(keys, keys[~repeatable_row])
    per_event = events[keep].map(dict(event_weights)).to_numpy(dtype=np.float64)
    if np.isnan(per_event).any():
        unknown = sorted(set(events[keep][np.isnan(per_event)].astype(str)))
        raise ValueError(f"no event weight for event types {unknown}")
    weights = per_event * np.power(0.5, age_days(interactions)[keep] / half_life_days)
    pairs, inverse = np.unique(keys[keep], return_inverse=True)
    sums = np.bincount(inverse, weights=weights, minlength=len(pairs))
    positive = sums > 0
    pairs = pairs[positive]
    return pairs >> 32, pairs & 0xFFFFFFFF, sums[positive]


def pair_matrix(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray | None,
    user_map: IdMap,
    item_map: IdMap,
) -> csr_matrix:
    """Users x items CSR (the maps' index order) of the given pairs: values summed per pair
    (float64), or True per pair (bool) when values is None; ids not in the maps are left out."""
    rows = user_map.index(np.asarray(users, dtype=np.int64))
    cols = item_map.index(np.asarray(items, dtype=np.int64))
    known = (rows != UNKNOWN) & (cols != UNKNOWN)
    if values is None:
        data = np.ones(int(known.sum()), dtype=bool)
    else:
        data = np.asarray(values, dtype=np.float64)[known]
    matrix = csr_matrix((data, (rows[known], cols[known])), shape=(len(user_map), len(item_map)))
    matrix.sum_duplicates()  # bool: a pair's rows OR-ed; float: summed
    return matrix


def matrix_hash(matrix: csr_matrix, row_ids: np.ndarray, col_ids: np.ndarray) -> str:
    """sha256 of a CSR matrix's structure, values and id maps: the training data's fingerprint."""
    digest = hashlib.sha256()
    matrix = csr_matrix(matrix)
    matrix.sort_indices()
    for array in (matrix.indptr, matrix.indices, matrix.data, row_ids, col_ids):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(str(matrix.shape).encode())
    return digest.hexdigest()
