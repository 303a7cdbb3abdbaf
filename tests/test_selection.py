"""Model selection (models_ml.selection) with scores given by hand: the mean over folds decides,
the hybrid starts from the best ALS and EASE points, ties go to the family searched first."""

import pandas as pd
import pytest

from models_ml.selection import Fold, grid, sample, select

FOLDS = [Fold(pd.DataFrame(), pd.DataFrame()) for _ in range(3)]


def scores_by_hand(table: dict[tuple, list[float]]):
    """fit_and_score from a table {(family, value): [score per fold]}, recording the calls."""
    calls: list[dict] = []

    def fit_and_score(params: dict, fold: Fold) -> float:
        calls.append(dict(params))
        key = (params["family"], params["w"] if "w" in params else params["x"])
        return table[key][next(i for i, f in enumerate(FOLDS) if f is fold)]

    return fit_and_score, calls


def test_the_mean_over_folds_decides_not_one_lucky_fold() -> None:
    fit_and_score, _ = scores_by_hand(
        {
            ("als", 1): [0.50, 0.10, 0.10],  # one lucky fold: mean 0.233
            ("als", 2): [0.30, 0.30, 0.30],  # steady: mean 0.300
            ("ease", 3): [0.20, 0.29, 0.29],  # mean 0.260
        }
    )
    chosen = select(FOLDS, {"als": {"x": [1, 2]}, "ease": {"x": [3]}}, fit_and_score, 10, 0)
    assert chosen["best"]["family"] == "als" and chosen["best"]["params"]["x"] == 2
    assert chosen["best"]["mean"] == pytest.approx(0.30)
    assert chosen["best_by_family"]["ease"]["mean"] == pytest.approx(0.26)
    assert chosen["trials"][0]["per_fold"] == [0.50, 0.10, 0.10]


def test_the_hybrid_starts_from_the_best_als_and_ease_points() -> None:
    fit_and_score, calls = scores_by_hand(
        {
            ("als", 1): [0.1] * 3,
            ("als", 2): [0.2] * 3,
            ("ease", 3): [0.3] * 3,
            ("ease", 4): [0.25] * 3,
            ("hybrid", 0.5): [0.4] * 3,
        }
    )
    spaces = {"hybrid": {"w": [0.5]}, "ease": {"x": [3, 4]}, "als": {"x": [1, 2]}}
    chosen = select(FOLDS, spaces, fit_and_score, 10, 0)
    hybrid_calls = [c for c in calls if c["family"] == "hybrid"]
    # ALS's best x (2) is overwritten by EASE's best x (3): the keys are shared here on purpose,
    # in real spaces each family has its own keys
    assert hybrid_calls[0] == {"x": 3, "w": 0.5, "family": "hybrid"}
    assert chosen["best"]["family"] == "hybrid"
    assert [t["family"] for t in chosen["trials"]] == ["als"] * 2 + ["ease"] * 2 + ["hybrid"]


def test_a_tie_goes_to_the_family_searched_first() -> None:
    fit_and_score, _ = scores_by_hand({("als", 1): [0.3] * 3, ("itemknn", 1): [0.3] * 3})
    chosen = select(FOLDS, {"itemknn": {"x": [1]}, "als": {"x": [1]}}, fit_and_score, 10, 0)
    assert chosen["best"]["family"] == "als"


def test_sampling_is_seeded_and_unknown_families_are_refused() -> None:
    space = {"a": [1, 2, 3], "b": [4, 5]}
    assert len(grid(space)) == 6 and sample(space, 10, 0) == grid(space)
    assert sample(space, 3, 7) == sample(space, 3, 7) and len(sample(space, 3, 7)) == 3
    with pytest.raises(ValueError, match="unknown families"):
        select(FOLDS, {"svd": {"x": [1]}}, lambda p, f: 0.0, 1, 0)
