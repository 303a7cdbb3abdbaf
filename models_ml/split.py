"""Time-based holdout: the last N days are the test period, everything before is train."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from recomart.schema import TIME


class Split(NamedTuple):
    """Train rows (event_at < cutoff), test rows (event_at >= cutoff) and the cutoff."""

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp


def time_split(interactions: pd.DataFrame, holdout_days: float) -> Split:
    """Split interactions at max(event_at) - holdout_days; both halves get a fresh index."""
    if holdout_days <= 0:
        raise ValueError(f"holdout_days must be positive, got {holdout_days}")
    if interactions.empty:
        raise ValueError("no interactions to split")
    cutoff = interactions[TIME].max() - pd.Timedelta(days=holdout_days)
    in_test = (interactions[TIME] >= cutoff).to_numpy()
    return Split(
        train=interactions.loc[~in_test].reset_index(drop=True),
        test=interactions.loc[in_test].reset_index(drop=True),
        cutoff=cutoff,
    )
