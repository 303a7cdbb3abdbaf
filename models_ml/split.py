"""Holdout strategies: which interactions train the model and which test it.

Pure functions on the interactions frame (columns of recomart_core.schema: USER, ITEM, TIME, ...):

- `last_days(frame, days)`: the last `days` days of the data are test: event_at >= max - days;
- `last_share(frame, share)`: the last `share` of the data's time span are test:
  event_at >= max - share * (max - min);
- `leave_last_n(frame, n)`: each user's last n interactions (by event_at; ties broken by item id,
  then event type, then rating, then row order) are test, for the users who keep at least one
  interaction in train; users with n interactions or fewer stay whole in train. There is no single
  cutoff: another user's train rows may be newer than this user's test rows;
- `holdout(frame, settings, min_rating)`: the strategy of [train.evaluation] `holdout`. "auto" (the
  default) runs `last_days` when it scores at least `min_eval_users` users (warm users with a
  relevant test item, models_ml.evaluate.relevant_items) and at least `min_eval_share` of the
  users `leave_last_n` would score, else `leave_last_n`: a dataset whose users are active in their
  own windows over years leaves a fixed last month nearly empty.

Every Split says its strategy, parameters and why it was chosen; `cutoff` (test = event_at >=
cutoff) where one exists (None for leave-last-n); and `reference_time`, the newest train event:
training counts its recency from there and looks at nothing later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from models_ml.evaluate import relevant_items
from recomart_core.schema import EVENT, ITEM, RATING, TIME, USER
from recomart_core.settings import Evaluation as EvaluationSettings  # [train.evaluation]

__all__ = ["EvaluationSettings", "Split", "holdout", "last_days", "last_share", "leave_last_n"]

AUTO = "auto"
LAST_DAYS = "last_days"
LAST_SHARE = "last_share"
LEAVE_LAST_N = "leave_last_n"


@dataclass(frozen=True)
class Split:
    """Train and test rows (fresh indexes) and how they were chosen.

    strategy: the one that ran (last_days, last_share, leave_last_n); requested: the configured
    one (auto or the same); params: the strategy's parameter ({"holdout_days": 30.0}, ...);
    reason: why this strategy; cutoff: test = event_at >= cutoff (None for leave_last_n);
    reference_time: the newest train event (None when train is empty).
    """

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp | None
    strategy: str
    params: dict[str, Any]
    reason: str
    reference_time: pd.Timestamp | None
    requested: str = ""

    @property
    def label(self) -> str:
        """'last 30 days', 'last 10% of the time span', 'leave-last-1'."""
        return describe(self.strategy, self.params)

    def info(self) -> dict[str, Any]:
        """What reports and MLflow record: strategy, params, reason, cutoff, reference time."""
        return {
            "strategy": self.strategy,
            "requested": self.requested or self.strategy,
            "label": self.label,
            "params": dict(self.params),
            "reason": self.reason,
            "cutoff": None if self.cutoff is None else self.cutoff.isoformat(),
            "reference_time": None
            if self.reference_time is None
            else self.reference_time.isoformat(),
            "n_train_rows": len(self.train),
            "n_test_rows": len(self.test),
        }


def describe(strategy: str, params: dict[str, Any]) -> str:
    if strategy == LAST_DAYS:
        return f"last {params['holdout_days']:g} days"
    if strategy == LAST_SHARE:
        return f"last {100 * params['holdout_share']:g}% of the time span"
    if strategy == LEAVE_LAST_N:
        return f"leave-last-{params['leave_last_n']}"
    raise ValueError(f"unknown holdout strategy {strategy!r}")


def _check(interactions: pd.DataFrame) -> None:
    if interactions.empty:
        raise ValueError("no interactions to split")


def _make(
    interactions: pd.DataFrame,
    in_test: np.ndarray,
    cutoff: pd.Timestamp | None,
    strategy: str,
    params: dict[str, Any],
) -> Split:
    train = interactions.loc[~in_test].reset_index(drop=True)
    test = interactions.loc[in_test].reset_index(drop=True)
    reference = train[TIME].max() if len(train) else None
    return Split(
        train=train,
        test=test,
        cutoff=cutoff,
        strategy=strategy,
        params=params,
        reason=f"holdout = {strategy}",
        reference_time=reference,
        requested=strategy,
    )


def _split_at(
    interactions: pd.DataFrame, cutoff: pd.Timestamp, strategy: str, params: dict[str, Any]
) -> Split:
    return _make(interactions, _from(interactions, cutoff), cutoff, strategy, params)


def _from(interactions: pd.DataFrame, cutoff: pd.Timestamp) -> np.ndarray:
    """The rows at or after cutoff (the test rows of a time holdout)."""
    return (interactions[TIME] >= cutoff).to_numpy()


def last_days(interactions: pd.DataFrame, holdout_days: float) -> Split:
    """Test = event_at >= max(event_at) - holdout_days (the cutoff instant belongs to test)."""
    return _split_at(interactions, _days_cutoff(interactions, holdout_days), LAST_DAYS,
                     {"holdout_days": holdout_days})  # fmt: skip


def _days_cutoff(interactions: pd.DataFrame, holdout_days: float) -> pd.Timestamp:
    if not holdout_days > 0:
        raise ValueError(f"holdout_days must be positive, got {holdout_days}")
    _check(interactions)
    return interactions[TIME].max() - pd.Timedelta(days=holdout_days)


def last_share(interactions: pd.DataFrame, holdout_share: float) -> Split:
    """Test = event_at >= max - holdout_share * (max - min) of event_at, 0 < share < 1."""
    if not 0 < holdout_share < 1:
        raise ValueError(f"holdout_share must be between 0 and 1, got {holdout_share}")
    _check(interactions)
    first, last = interactions[TIME].min(), interactions[TIME].max()
    cutoff = last - (last - first) * holdout_share
    return _split_at(interactions, cutoff, LAST_SHARE, {"holdout_share": holdout_share})


def leave_last_n(interactions: pd.DataFrame, n: int = 1) -> Split:
    """Each user's last n interactions are test, for users with more than n; cutoff None.

    Order within a user: event_at, then item id, event type, rating and row order, so equal
    timestamps split the same way whatever order the rows came in (for distinct rows).
    """
    return _make(interactions, _last_n_rows(interactions, n), None, LEAVE_LAST_N,
                 {"leave_last_n": n})  # fmt: skip


def _last_n_rows(interactions: pd.DataFrame, n: int) -> np.ndarray:
    """The rows leave_last_n puts in test (boolean, aligned with the rows)."""
    if n < 1:
        raise ValueError(f"leave_last_n must be at least 1, got {n}")
    _check(interactions)
    keys = [_sort_key(interactions[c]) for c in (RATING, EVENT, ITEM) if c in interactions]
    # np.lexsort: the last key is the primary one; row order (arange) breaks the last ties.
    users = _sort_key(interactions[USER])
    order = np.lexsort([np.arange(len(interactions)), *keys, _sort_key(interactions[TIME]), users])
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    position = np.arange(len(order)) - np.repeat(starts, counts)  # 0-based within the user
    count = np.repeat(counts, counts)
    test_sorted = (count > n) & (position >= count - n)
    in_test = np.zeros(len(order), dtype=bool)
    in_test[order] = test_sorted
    return in_test


def _sort_key(column: pd.Series) -> np.ndarray:
    """A column as an array np.lexsort can order: plain numpy numbers and datetimes as they are,
    anything else (text, nullable, tz-aware) by its rank among the sorted values (missing: -1)."""
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufM":
        return column.to_numpy()
    return pd.factorize(column, sort=True)[0]


def count_eval_users(
    train: pd.DataFrame, test: pd.DataFrame, min_rating: float = 0, repeatable: Sequence[str] = ()
) -> int:
    """Warm users with a relevant test item (models_ml.evaluate.relevant_items, under the repeat
    policy `repeatable`): who is scored."""
    if train.empty or test.empty:
        return 0
    return len(relevant_items(train, test, min_rating, repeatable)[0])


def holdout(
    interactions: pd.DataFrame,
    settings: EvaluationSettings,
    min_rating: float = 0,
    repeatable: Sequence[str] = (),
) -> Split:
    """The split of settings.holdout. "auto": last_days when it scores at least min_eval_users
    users and at least min_eval_share of the users leave_last_n would score, else leave_last_n
    (the reason says which, with the counts); users are counted as the evaluation scores them,
    under the repeat policy `repeatable` ([train] repeatable_events)."""
    if settings.holdout == LAST_DAYS:
        return last_days(interactions, settings.holdout_days)
    if settings.holdout == LAST_SHARE:
        return last_share(interactions, settings.holdout_share)
    if settings.holdout == LEAVE_LAST_N:
        return leave_last_n(interactions, settings.leave_last_n)
    # both candidates judged on masks and the id columns; only the chosen one is split
    cutoff = _days_cutoff(interactions, settings.holdout_days)
    by_days = _from(interactions, cutoff)
    by_users = _last_n_rows(interactions, settings.leave_last_n)
    ids = interactions[[c for c in (USER, ITEM, RATING, EVENT) if c in interactions]]
    scored, could = (
        count_eval_users(ids.loc[~mask], ids.loc[mask], min_rating, repeatable)
        for mask in (by_days, by_users)
    )
    enough = max(settings.min_eval_users, settings.min_eval_share * could)
    days_label = describe(LAST_DAYS, {"holdout_days": settings.holdout_days})
    users_label = describe(LEAVE_LAST_N, {"leave_last_n": settings.leave_last_n})
    if scored >= enough:
        params = {"holdout_days": settings.holdout_days}
        chosen, verdict = _make(interactions, by_days, cutoff, LAST_DAYS, params), ">="
    else:
        params = {"leave_last_n": settings.leave_last_n}
        chosen, verdict = _make(interactions, by_users, None, LEAVE_LAST_N, params), "<"
    reason = (
        f"{days_label} score {scored} users {verdict} {enough:g} (min_eval_users"
        f" {settings.min_eval_users}, min_eval_share {settings.min_eval_share:g} of the {could}"
        f" {users_label} scores): {chosen.label}"
    )
    return replace(chosen, reason=reason, requested=AUTO)
