"""Model selection (models_ml.selection) with scores given by hand: the mean over folds decides,
the hybrid starts from the best ALS and EASE points, ties go to the family searched first; and
the bounded search of the pipeline (a fake clock and hand-made per-user scores): the budget is
kept and what is skipped is named, every family is tried before any is refined, the simplest
candidate within one standard error wins, nothing is chosen below popularity."""

import numpy as np
import pandas as pd
import pytest

from models_ml import selection
from models_ml.families import learned
from models_ml.selection import (
    FIRST_POINTS_FIRST,
    ONE_SE,
    Fold,
    Search,
    grid,
    sample,
    select,
    simplicity,
)

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


# ---------------------------------------------------------------- the bounded search (issue 25)


def fold_number(fold: Fold) -> int:
    return next(i for i, f in enumerate(FOLDS) if f is fold)


class FakeClock:
    """A clock the fake fits advance: each fit takes `cost[family]` seconds of it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed_fits(clock: FakeClock, cost: dict[str, float], n_users: int = 50):
    """fit_and_score returning per-user arrays (the candidate's x as every user's score) and
    advancing the clock by the family's cost; the calls are recorded."""
    calls: list[tuple[str, object, int]] = []

    def fit_and_score(params: dict, fold: Fold) -> np.ndarray:
        clock.now += cost[params["family"]]
        calls.append((params["family"], params.get("x"), fold_number(fold)))
        return np.full(n_users, float(params.get("x", 0)) / 100)

    return fit_and_score, calls


def test_a_tiny_budget_is_kept_and_what_does_not_fit_is_skipped_and_named() -> None:
    """Every fold is estimated at 1 s and takes 1 s: after the first candidate (3 s of a 5 s
    budget) no other candidate's 3 s fit in the 2 s left; each is named with its estimate."""
    clock = FakeClock()
    fit_and_score, calls = timed_fits(clock, {"als": 1.0, "ease": 1.0})
    search = Search(
        order=FIRST_POINTS_FIRST, first={"als": {"x": 1}}, budget_s=5.0,
        estimate=lambda params, fold, shared: 1.0, clock=clock, started=0.0,
    )  # fmt: skip
    spaces = {"als": {"x": [1, 2, 3]}, "ease": {"x": [4]}}
    chosen = select(FOLDS, spaces, fit_and_score, 10, 0, search)
    assert [t["params"]["x"] for t in chosen["trials"]] == [1]
    assert calls == [("als", 1, 0), ("als", 1, 1), ("als", 1, 2)]
    skipped = [(s["family"], s["params"]["x"], s["reason"]) for s in chosen["skipped"]]
    reason = "estimated 3.0 s, 2.0 s left of the 5 s budget"
    assert skipped == [("ease", 4, reason), ("als", 2, reason), ("als", 3, reason)]
    assert chosen["elapsed_s"] == 3.0 <= search.budget_s
    assert chosen["best"]["params"] == {"x": 1, "family": "als"}


def test_a_fold_whose_calibrated_estimate_does_not_fit_stops_its_candidate() -> None:
    """ease is estimated at 0.3 s a fold a priori (0.9 s fits the 1 s left) but its first fold
    takes 1 s: calibrated, fold 2 is estimated at 1 s, no time is left, the candidate stops and
    is named; the search ends at the budget (one fold's overrun at most)."""
    clock = FakeClock()
    fit_and_score, calls = timed_fits(clock, {"als": 1.0, "ease": 1.0})
    prior = {"als": 1.0, "ease": 0.3}
    search = Search(
        order=FIRST_POINTS_FIRST, budget_s=4.0, clock=clock, started=0.0,
        estimate=lambda params, fold, shared: prior[params["family"]],
    )  # fmt: skip
    chosen = select(FOLDS, {"als": {"x": [1]}, "ease": {"x": [4]}}, fit_and_score, 10, 0, search)
    assert calls[-1] == ("ease", 4, 0) and len(calls) == 4
    (stopped,) = chosen["skipped"]
    assert stopped["family"] == "ease" and stopped["estimate_s"] == pytest.approx(0.9)
    assert (
        stopped["reason"]
        == "stopped before fold 2/3: estimated 1.0 s, 0.0 s left of the 4 s budget"
    )
    assert [t["family"] for t in chosen["trials"]] == ["als"]  # an unfinished candidate is not used
    assert chosen["elapsed_s"] == 4.0


def test_every_family_is_tried_once_before_any_is_refined() -> None:
    """first_points_first: the [train] family's point first, then each other family's first
    point, then the rest; EASE's free diagonal is tried with the same point, one after the
    other on each fold (the inverse is shared), and the hybrid starts from the best so far."""
    clock = FakeClock()
    fit_and_score, calls = timed_fits(clock, dict.fromkeys(learned(), 0.0))
    spaces = {
        "als": {"x": [1, 2]},
        "ease": {"x": [3, 5], "ease_zero_diagonal": [True, False]},
        "itemknn": {"x": [4]},
        "hybrid": {"w": [0.5]},
    }
    search = Search(order=FIRST_POINTS_FIRST, first={"itemknn": {"x": 4}, "als": {"x": 2}},
                    free={"ease": "ease_zero_diagonal"})  # fmt: skip
    chosen = select(FOLDS, spaces, fit_and_score, 10, 0, search)
    order = [(t["family"], t["params"].get("x"), t["params"].get("ease_zero_diagonal"))
             for t in chosen["trials"]]  # fmt: skip
    assert order == [
        ("itemknn", 4, None), ("als", 2, None), ("ease", 3, True), ("ease", 3, False),
        ("hybrid", 3, True), ("als", 1, None), ("ease", 5, True), ("ease", 5, False),
    ]  # fmt: skip
    ease_calls = [(x, fold) for family, x, fold in calls if family == "ease"][:6]
    assert ease_calls == [(3, 0), (3, 0), (3, 1), (3, 1), (3, 2), (3, 2)]  # fold by fold


def per_user(means: list[float], noise: float, seed: int, n_users: int = 200) -> list[np.ndarray]:
    """Per-fold per-user scores with these fold means and per-user noise (seeded)."""
    rng = np.random.default_rng(seed)
    values = []
    for mean in means:
        v = rng.normal(0, noise, n_users)
        values.append(v - v.mean() + mean)
    return values


def scores_by_arrays(table: dict[tuple, list[np.ndarray]]):
    def fit_and_score(params: dict, fold: Fold) -> np.ndarray:
        return table[(params["family"], params["x"])][fold_number(fold)]

    return fit_and_score


def test_the_one_se_rule_picks_the_simpler_of_two_near_equal_candidates() -> None:
    """ease's mean is 0.002 above als's, with a paired standard error of about 0.006 (noisy
    per-user differences): als, the simpler family, is chosen; the best mean stays ease. When
    the gap is 0.05 (far beyond one SE) ease is chosen; best_mean always takes ease."""
    als = per_user([0.300, 0.300, 0.300], 0.05, seed=1)
    near = [a + d for a, d in zip(als, per_user([0.002] * 3, 0.15, seed=2), strict=True)]
    far = [a + 0.05 for a in als]
    spaces = {"als": {"x": [1]}, "ease": {"x": [2]}}
    one_se = Search(rule=ONE_SE)
    chosen = select(FOLDS, spaces, scores_by_arrays({("als", 1): als, ("ease", 2): near}), 10, 0,
                    one_se)  # fmt: skip
    assert chosen["best_mean"]["family"] == "ease" and chosen["best"]["family"] == "als"
    within = {w["family"]: w for w in chosen["decision"]["within"]}
    se = within["als"]["se"]
    differences = [n - a for a, n in zip(als, near, strict=True)]
    expected = np.sqrt(sum(d.var(ddof=1) / len(d) for d in differences)) / 3
    assert se == pytest.approx(expected) and 0.002 < se < 0.02
    assert within["als"]["gap"] == pytest.approx(0.002)
    assert "als (trial 0, mean 0.3000) is the simplest of 2" in chosen["decision"]["why"]
    table = {("als", 1): als, ("ease", 2): far}
    assert select(FOLDS, spaces, scores_by_arrays(table), 10, 0, one_se)["best"]["family"] == "ease"
    table = {("als", 1): als, ("ease", 2): near}
    assert select(FOLDS, spaces, scores_by_arrays(table), 10, 0)["best"]["family"] == "ease"


def test_within_a_family_fewer_factors_and_more_regularisation_are_simpler() -> None:
    trials = [
        {"trial": 0, "family": "als", "params": {"als.factors": 64, "als.regularization": 5.0}},
        {"trial": 1, "family": "als", "params": {"als.factors": 16, "als.regularization": 0.2}},
        {"trial": 2, "family": "als", "params": {"als.factors": 16, "als.regularization": 50.0}},
        {"trial": 3, "family": "itemknn", "params": {"itemknn.neighbours": 50}},
        {"trial": 4, "family": "hybrid", "params": {"als.factors": 16, "als.regularization": 50.0}},
    ]
    assert [t["trial"] for t in sorted(trials, key=simplicity)] == [2, 1, 0, 3, 4]


def test_nothing_is_chosen_when_no_candidate_beats_popularity() -> None:
    """The best candidate is below popularity on validation: no choice, and the reason in words;
    a second baseline is compared the same way."""
    table = {("als", 1): [np.full(40, 0.0012)] * 3, ("ease", 2): [np.full(40, 0.0010)] * 3}
    baselines = {"popularity": [np.full(40, 0.0015)] * 3}
    search = Search(rule=ONE_SE, baselines=baselines)
    spaces = {"als": {"x": [1]}, "ease": {"x": [2]}}
    chosen = select(FOLDS, spaces, scores_by_arrays(table), 10, 0, search)
    assert chosen["best"] is None and chosen["best_mean"]["family"] == "als"
    assert chosen["refused"] == (
        "no candidate beats popularity on validation: best als 0.0012 vs popularity 0.0015"
    )
    baselines = {"popularity": [np.full(40, 0.0005)] * 3, "repeat": [np.full(40, 0.0020)] * 3}
    refused = select(FOLDS, spaces, scores_by_arrays(table), 10, 0,
                     Search(rule=ONE_SE, baselines=baselines))["refused"]  # fmt: skip
    assert refused == "no candidate beats repeat on validation: best als 0.0012 vs repeat 0.0020"
    baselines = {"popularity": [np.full(40, 0.0011)] * 3}  # als beats it, ease does not
    chosen = select(FOLDS, spaces, scores_by_arrays(table), 10, 0,
                    Search(rule=ONE_SE, baselines=baselines))  # fmt: skip
    assert chosen["refused"] is None and chosen["best"]["family"] == "als"


def test_a_free_settings_other_value_rides_on_the_first_ones_fit() -> None:
    """EASE's two diagonals: the first is estimated at 2 s a fold a priori (6 s of the 7 s
    budget) and the other at 1 s (shared): together they would not fit, yet the first takes
    1 s a fold, the other 0.5 s, and the other runs on each fold while the first's remaining
    folds still fit: both finish within the budget."""
    clock = FakeClock()

    def fit_and_score(params: dict, fold: Fold) -> np.ndarray:
        clock.now += 1.0 if params["ease_zero_diagonal"] else 0.5
        return np.full(20, 0.1)

    search = Search(
        order=FIRST_POINTS_FIRST, budget_s=7.0, clock=clock, started=0.0,
        free={"ease": "ease_zero_diagonal"},
        estimate=lambda params, fold, shared: 1.0 if shared else 2.0,
    )  # fmt: skip
    spaces = {"ease": {"x": [1], "ease_zero_diagonal": [True, False]}}
    chosen = select(FOLDS, spaces, fit_and_score, 10, 0, search)
    assert [t["params"]["ease_zero_diagonal"] for t in chosen["trials"]] == [True, False]
    assert not chosen["skipped"] and chosen["elapsed_s"] == 4.5


def test_the_seeded_sample_is_the_one_of_the_flat_names() -> None:
    """Naming a family's keys `<family>.<key>` must not change which grid points the seeded search
    draws: the default ALS space samples the points its flat names (before the tables) drew."""
    flat = {"factors": [16, 64, 128], "regularization": [0.2, 5.0, 50.0], "alpha": [5.0, 40.0],
            "weighting": ["linear", "bm25"], "recency_half_life_days": [0.0, 30.0]}  # fmt: skip
    named = {("als." + k if k in ("factors", "regularization") else k): v for k, v in flat.items()}
    before = selection.sample(flat, 8, 0)
    after = selection.sample(named, 8, 0)
    assert [{k.removeprefix("als."): v for k, v in p.items()} for p in after] == before
