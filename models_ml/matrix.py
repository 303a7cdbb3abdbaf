"""The user x item confidence matrix that implicit's ALS fits, and the raw id <-> index maps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from recomart.schema import EVENT, EVENT_TYPES, ITEM, RATING, RATING_MAX, USER

UNKNOWN = -1


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
    """Weight 1.0 for every event type in recomart.schema.EVENT_TYPES."""
    return dict.fromkeys(EVENT_TYPES, 1.0)


def interaction_weights(
    interactions: pd.DataFrame, event_weights: Mapping[str, float]
) -> np.ndarray:
    """Per row: event_weights[event_type] * rating / RATING_MAX, as float64."""
    if any(weight <= 0 for weight in event_weights.values()):
        raise ValueError(f"event weights must be positive: {dict(event_weights)}")
    per_event = interactions[EVENT].map(dict(event_weights)).to_numpy(dtype=np.float64)
    missing = np.isnan(per_event)
    if missing.any():
        unknown = sorted(set(interactions.loc[missing, EVENT].astype(str)))
        raise ValueError(f"no event weight for event types {unknown}")
    return per_event * interactions[RATING].to_numpy(dtype=np.float64) / RATING_MAX


def confidence_matrix(
    interactions: pd.DataFrame, event_weights: Mapping[str, float], alpha: float
) -> tuple[csr_matrix, IdMap, IdMap]:
    """Users x items float32 CSR of alpha * summed weights, with the user and item id maps.

    Rows that share a (user, item) pair are summed. implicit's ALS reads each stored value as
    the confidence of a positive preference (unstored cells: preference 0, confidence 1).
    """
    if interactions.empty:
        raise ValueError("no interactions to build a matrix from")
    user_ids, rows = np.unique(interactions[USER].to_numpy(dtype=np.int64), return_inverse=True)
    item_ids, cols = np.unique(interactions[ITEM].to_numpy(dtype=np.int64), return_inverse=True)
    values = alpha * interaction_weights(interactions, event_weights)
    matrix = csr_matrix((values, (rows, cols)), shape=(len(user_ids), len(item_ids)))
    matrix.sum_duplicates()
    return matrix.astype(np.float32), IdMap(user_ids), IdMap(item_ids)
