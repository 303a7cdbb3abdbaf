"""The model search of the pipeline (models_ml.tune): folds cut by the test split's own rule,
[train]'s point first, the baselines to beat, rescaled penalties, the repeat blend; and,
through a real MLflow store on a small marts warehouse, a tiny budget kept with what was skipped
named, and a report that says how it decided."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import project_home
from synthetic_marts import planted_interactions, write_marts

from models_ml import baselines as baseline_models
from models_ml.recommender import Recommender
from models_ml.selection import FIRST_POINTS_FIRST, Fold, Search
from models_ml.split import holdout
from models_ml.tune import (
    baselines,
    cheapest_first,
    first_points,
    fold_settings,
    qualified_spaces,
    repeat_blend,
    rescale,
    run_tuning,
    searched_rows,
    summary,
    validation_folds,
    with_point,
)
from recomart import pipeline
from recomart_core import config
from recomart_core.schema import EVENT, ITEM, RATING, TIME, USER
from recomart_core.settings import Evaluation, Train


def active(users: range, first_day: int, last_day: int, per_user: int, seed: int) -> pd.DataFrame:
    """per_user events of each user, on distinct items, spread over days first_day..last_day."""
    rng = np.random.default_rng(seed)
    n = len(users) * per_user
    days = rng.uniform(first_day, last_day, n)
    return pd.DataFrame(
        {
            USER: np.repeat(np.array(users, dtype=np.int64), per_user),
            ITEM: np.tile(np.arange(per_user, dtype=np.int64), len(users)) + 1000 * seed,
            RATING: np.nan,
            EVENT: "view",
            TIME: pd.Timestamp("2026-01-01") + pd.to_timedelta(days, unit="D"),
        }
    )


def test_the_folds_are_cut_by_the_rule_the_test_split_resolved_to() -> None:
    """100 users active in days 0-100 and again in the last 30 days, 5 in between: "auto" keeps
    last_days for the test (100 users in its last 30 days), but on the training part alone it
    would fall back to leave_last_n (5 users in the last 30 days): the folds are last_days."""
    rows = pd.concat(
        [
            active(range(100), 0, 100, 6, seed=1),
            active(range(5), 110, 140, 6, seed=2),
            active(range(100), 171, 200, 3, seed=3),
        ],
        ignore_index=True,
    )
    evaluation = Evaluation()  # auto, 30 days, min_eval_users 50
    test = holdout(rows, evaluation)
    assert test.strategy == "last_days"
    assert holdout(test.train, evaluation).strategy == "leave_last_n"  # what "auto" would do
    train = Train(tune={"folds": 2, "validation_days": 20.0})
    folds = validation_folds(test, test.train, evaluation, train)
    assert [f.strategy for f in folds] == ["last_days", "last_days"]
    assert [f.params for f in folds] == [{"holdout_days": 20.0}] * 2
    assert folds[0].cutoff == test.train[TIME].max() - pd.Timedelta(days=20)

    by_users = holdout(rows, Evaluation(holdout="leave_last_n", leave_last_n=3))
    settings = fold_settings(by_users, evaluation, validation_days=20.0)
    assert (settings.holdout, settings.leave_last_n) == ("leave_last_n", 3)


def test_trains_own_values_are_tried_first_its_family_first_of_all() -> None:
    train = Train(
        family="ease", ease={"l2": 300.0}, als={"factors": 24}, itemknn={"neighbours": 70}
    )
    spaces = qualified_spaces(
        {
            "als": {"factors": [16, 64], "alpha": [5.0]},
            "ease": {"l2": [20.0], "zero_diagonal": [True, False]},
            "itemknn": {"neighbours": [50]},
        }
    )
    first = first_points(train, spaces)
    assert list(first) == ["ease", "als", "itemknn"]
    assert first == {  # a family's own settings by "<family>.<key>", shared ones as they are
        "ease": {"ease.l2": 300.0, "ease.zero_diagonal": True},
        "als": {"als.factors": 24, "alpha": 40.0},
        "itemknn": {"itemknn.neighbours": 70},
    }
    chosen = with_point(train, {**first["als"], "family": "als"})
    assert (chosen.family, chosen.families["als"]["factors"], chosen.families["ease"]) == (
        "als", 24, {"l2": 300.0},
    )  # fmt: skip


def test_after_trains_family_the_cheapest_families_go_first() -> None:
    first = {"als": {"als.factors": 16}, "hybrid": {}, "ease": {}, "itemknn": {}, "bpr": {}}
    cost = {"als": 5.0, "hybrid": 90.0, "ease": 60.0, "itemknn": 1.0, "bpr": 20.0}
    ordered = cheapest_first(first, "als", lambda params, fold, shared: cost[params["family"]])
    assert list(ordered) == ["als", "itemknn", "bpr", "ease", "hybrid"]
    assert list(cheapest_first(first, "ease", lambda p, f, s: cost[p["family"]]))[:2] == [
        "ease",
        "itemknn",
    ]


def test_the_baselines_to_beat_follow_the_repeat_policy() -> None:
    assert list(baselines(Train())) == ["popularity"]
    repeats = Train(repeatable_events=["view"])
    made = baselines(repeats)
    expected = ["popularity"]
    if hasattr(baseline_models, "RepeatRecommender"):
        expected.append("repeat")
        assert isinstance(made["repeat"](), baseline_models.RepeatRecommender)
    assert list(made) == expected


def test_penalties_that_grow_with_users_are_divided_on_a_sample() -> None:
    point = {"ease.l2": 500.0, "als.regularization": 5.0, "family": "ease"}
    assert rescale(point, 5.0) == {"ease.l2": 100.0, "als.regularization": 5.0, "family": "ease"}
    assert rescale(point, 1.0) is point


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> config.Config:
    """A RecoMart home in tmp_path with the project's recomart.toml and small planted marts."""
    cfg = project_home(tmp_path, monkeypatch)
    interactions, catalog = planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=5
    )
    write_marts(cfg.paths.warehouse, interactions, catalog)
    yield cfg
    config.load.cache_clear()


@pytest.mark.e2e
def test_a_tiny_budget_is_kept_and_the_skipped_candidates_are_named(
    cfg: config.Config, caplog: pytest.LogCaptureFixture
) -> None:
    """A 2-second budget for the whole default space: [train]'s point is tried first, what does
    not fit is skipped, each named with its estimate in the report and in the logged summary."""
    small = config.with_train(cfg, tune={"budget_s": 2.0})
    with caplog.at_level("INFO", logger="tuning"):
        result = pipeline.tune(small)
    saved = json.loads((cfg.paths.reports / "tuning.json").read_text())
    skipped = saved["skipped_candidates"]
    assert skipped and saved["budget_s"] == 2.0
    for entry in skipped:
        assert re.search(r"estimated \d+\.\d s, \d+\.\d s left of the 2 s budget", entry["reason"])
        assert entry["estimate_s"] > 0 and entry["family"] in entry["params"]["family"]
    planned = len(saved["trials"]) + len(skipped)
    assert planned >= 30  # the whole default space was planned, most of it skipped
    # [train]'s point is considered first: the first trial, or (on a loaded machine, where its
    # estimate may not fit what is left) the first candidate skipped
    tried = [t for t in saved["trials"] if t["family"] == "als"]
    first = tried[0] if tried and tried[0] is saved["trials"][0] else skipped[0]
    assert first["family"] == "als" and first["params"]["als.factors"] == 16
    assert (
        first["params"]["als.regularization"]
        == cfg.settings.train.families["als"]["regularization"]
    )
    logged = caplog.text
    assert f"skipped {len(skipped)} for the budget" in logged
    assert saved["summary"] == result["summary"] == summary(saved)


@pytest.mark.e2e
def test_the_search_report_says_how_it_decided(cfg: config.Config) -> None:
    """With room for a small space: folds by the test's rule, every trial with its estimate and
    measured seconds, the one-SE decision, the baselines, and a choice that beats popularity."""
    space = {
        "als": {"factors": [8, 16], "regularization": [0.05]},
        "ease": {"l2": [10.0, 100.0], "zero_diagonal": [True, False]},
        "itemknn": {"neighbours": [20]},
    }
    small = config.with_train(cfg, tune={"folds": 2, "space": space, "budget_s": 600})
    result = run_tuning(small, progress_bar=False)
    assert result["holdout"]["strategy"] == result["folds_strategy"]["strategy"]
    assert all(f["strategy"] == result["holdout"]["strategy"] for f in result["folds"])
    assert not result["skipped_candidates"] and result["elapsed_s"] > 0
    families = [t["family"] for t in result["trials"]]
    assert families[0] == "als"  # [train]'s family and values first
    assert (
        result["trials"][0]["params"]["als.factors"]
        == cfg.settings.train.families["als"]["factors"]
    )
    first_seen = [families.index(f) for f in ("als", "ease", "itemknn")]
    second_als = families.index("als", 1)
    assert max(first_seen) < second_als  # every family once before any is refined
    for trial in result["trials"]:
        assert trial["estimate_s"] > 0 and trial["seconds"] > 0 and len(trial["n_users"]) == 2
    decision = result["decision"]
    assert decision["rule"] == "one_se" and result["refused"] is None
    chosen = result["best"]
    assert chosen["trial"] == decision["chosen"]
    assert any(w["trial"] == chosen["trial"] for w in decision["within"])
    assert chosen["mean"] > result["baselines"]["popularity"] == result["popularity_baseline"]
    assert result["best_params"] == chosen["params"] and result["rescaling"]["factor"] == 1.0
    assert result["repeat_blend"] is None  # no repeatable event type


def test_the_repeat_blend_is_chosen_on_validation_and_judged_against_the_baselines() -> None:
    """The chosen candidate scored with each repeat weight (one fit per fold): the best blend is
    taken when it is clearly better, and refused when it does not beat the repeat baseline."""
    if not hasattr(Recommender, "with_repeat_weight"):
        pytest.skip("the recommender has no with_repeat_weight yet")
    folds = [Fold(pd.DataFrame(), pd.DataFrame()) for _ in range(2)]
    fits: list[int] = []

    def scores(params: dict, fold: Fold, weights: list[float]) -> dict[float, np.ndarray]:
        fits.append(1)
        return {w: np.full(30, {0.0: 0.10, 0.5: 0.20, 1.0: 0.15}[w]) for w in weights}

    train = Train(repeatable_events=["view"], tune={"repeat_weights": [0.0, 0.5, 1.0]})
    best = {
        "trial": 0,
        "family": "als",
        "params": {"family": "als", "als.factors": 16},
        "mean": 0.1,
    }
    chosen = {"best": best, "calibration": {"als": 1.0}}
    search = Search(budget_s=100.0, started=time.perf_counter(), estimate=lambda p, f, s: 0.1)
    weak = {"popularity": [np.full(30, 0.05)] * 2, "repeat": [np.full(30, 0.12)] * 2}
    blend = repeat_blend(chosen, folds, scores, train, weak, search)
    assert len(fits) == 2  # one fit per fold, every weight scored on it
    assert blend["ran"] and blend["chosen_weight"] == 0.5 and blend["refused"] is None
    assert [w["mean"] for w in blend["weights"]] == pytest.approx([0.10, 0.20, 0.15])
    strong = {**weak, "repeat": [np.full(30, 0.25)] * 2}
    refused = repeat_blend(chosen, folds, scores, train, strong, search)
    assert refused["refused"] == (
        "no candidate beats repeat on validation: best als 0.2000 vs repeat 0.2500"
    )
    tight = Search(budget_s=1.0, started=time.perf_counter() - 0.99, estimate=lambda p, f, s: 5.0)
    skipped = repeat_blend(chosen, folds, scores, train, weak, tight)
    assert not skipped["ran"] and skipped["reason"].startswith("skipped: estimated")


def test_the_search_runs_on_all_users_when_it_fits_else_on_a_rescaled_sample() -> None:
    """300 users, max_users 100: with room in the budget for every planned candidate on all of
    them, all of them; with none, a seeded sample of 100 and EASE's l2 divided by 3 there."""
    rows = pd.concat([active(range(300), 0, 100, 5, seed=4)], ignore_index=True)
    spaces = {"als": {"als.factors": [8]}, "ease": {"ease.l2": [100.0]}}
    for budget, users, factor in ((10_000.0, 300, 1.0), (0.001, 100, 3.0)):
        train = Train(tune={"max_users": 100, "budget_s": budget})
        search = Search(order=FIRST_POINTS_FIRST, first=first_points(train, spaces))
        searched, rescaling = searched_rows(rows, train, spaces, search, np.array([], np.int64))
        assert searched[USER].nunique() == users and rescaling["factor"] == factor
        assert rescaling["n_train_users"] == 300 and rescaling["estimate_s"] > 0
    assert "ease.l2 divided by 3.00 while fitting there" in rescaling["reason"]
    few = Train(tune={"max_users": 1000})
    searched, rescaling = searched_rows(rows, few, spaces, search, np.array([], np.int64))
    assert searched is rows and rescaling["searched_on"] == "all users"
