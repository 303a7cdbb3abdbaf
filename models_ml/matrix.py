"""The user x item confidence matrix that implicit's ALS fits, and the raw id <-> index maps.

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
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from implicit.nearest_neighbours import bm25_weight
from scipy.sparse import csr_matrix

from models_ml.arrays import unique_sorted
from recomart.core.schema import (
    DEFAULT_EVENT,
    EVENT,
    ITEM,
    QUANTITY,
    RATING,
    RETURN_EVENT,
    TIME,
    USER,
    VALUE,
)
from recomart.core.settings import Ratings, Train

DEFAULTS = Train()  # the one set of defaults: recomart.core.settings [train]
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
    """[train.event_weights] as recomart.core.settings declares them."""
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
        times = interactions[TIME]
        newest = times.groupby(interactions[USER].to_numpy(), sort=False).transform("max")
        age_days = (newest - times).dt.total_seconds().to_numpy(dtype=np.float64) / 86_400
        weights = weights * np.power(0.5, age_days / recency_half_life_days)
    return weights


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


def matrix_hash(matrix: csr_matrix, row_ids: np.ndarray, col_ids: np.ndarray) -> str:
    """sha256 of a CSR matrix's structure, values and id maps: the training data's fingerprint."""
    digest = hashlib.sha256()
    matrix = csr_matrix(matrix)
    matrix.sort_indices()
    for array in (matrix.indptr, matrix.indices, matrix.data, row_ids, col_ids):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(str(matrix.shape).encode())
    return digest.hexdigest()
