"""When nothing learned beats the baselines, the shop is served the best baseline as a model.

The popularity family (models_ml.families) is the popularity baseline as a servable model:
U = 1 per user, V = each item's training interactions, so every known user's list is the
popularity ranking minus what the repeat policy excludes, and with repeat_weight 1 the repeat
baseline's list. A refused model search (models_ml.tune) trains it; the gate
(models_ml.registry.decide) promotes it only while there is no champion (or the champion is a
baseline too), never over a learned champion; a learned model later replaces it when it beats
the baselines and it beyond noise. Real DuckDB marts, real MLflow store and registry.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import project_home
from mlflow.tracking import MlflowClient
from synthetic_marts import planted_interactions, write_marts

from feature_store import FeatureStore
from models_ml import families, package, registry
from models_ml import tune as tuning
from models_ml.baselines import PopularityRecommender, RepeatRecommender
from models_ml.data import read_training_data
from models_ml.evaluate import evaluate_many
from models_ml.ranking import PAD_ITEM
from models_ml.split import EvaluationSettings, holdout
from models_ml.train import run_training
from recomart import pipeline
from recomart_core import config
from recomart_core.schema import EVENT, ITEM, RATING, TIME, USER

K = 10
REPEATABLE = ["view", "add_to_cart"]
T0 = pd.Timestamp("2026-06-30")


def random_log(seed: int = 0, n: int = 20_000) -> pd.DataFrame:
    """Interaction rows with a long-tailed item popularity and no taste structure: views,
    carts, purchases and a few returns over 90 days (codes as ids)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            USER: rng.integers(0, 1500, n).astype(np.int64),
            ITEM: (rng.zipf(1.3, n) % 400).astype(np.int64),
            EVENT: rng.choice(
                ["view", "add_to_cart", "purchase", "return"], n, p=[0.6, 0.2, 0.17, 0.03]
            ),
            RATING: np.nan,
            TIME: T0 - pd.to_timedelta(rng.uniform(0, 90, n), unit="D"),
        }
    )


def catalog_of(n_items: int = 450) -> pd.DataFrame:
    """A catalog larger than the log's items: the cold ones are never listed by popularity."""
    return pd.DataFrame({ITEM: np.arange(n_items, dtype=np.int64), "category": "c", "price": 1.0})


@pytest.mark.parametrize("repeatable", [[], REPEATABLE])
def test_the_popularity_family_lists_exactly_the_popularity_baseline(
    repeatable: list[str], tmp_path: Path
) -> None:
    """Every user's top 50 (one unknown user too), excluded pairs left out or not, equal to
    PopularityRecommender's, item for item and score for score, after a save and a load; with
    repeat_weight 1 equal to RepeatRecommender's; and the holdout NDCG@10 equal to the
    baseline's, user for user."""
    log = random_log()
    model = families.from_flat(family="popularity", repeatable_events=repeatable)
    model = model.fit(log, catalog_of())
    loaded = package.load_recommender(package.save_recommender(model, tmp_path / "model"))
    assert loaded.family == "popularity"
    baseline = PopularityRecommender(repeatable=repeatable).fit(log)
    users = np.append(np.unique(log[USER]), 10**9)
    for exclude in (True, False):
        expected = baseline.recommend_batch(users, 50, exclude)
        for served in (model, loaded):
            ids, scores = served.recommend_batch(users, 50, exclude)
            np.testing.assert_array_equal(ids, expected[0])
            np.testing.assert_array_equal(scores, expected[1])  # the counts themselves
    # a known user's path is the model's (the family says popularity); the score is the count
    user, item = str(users[0]), str(expected[0][0, 0])
    assert loaded.user_path(user) == "model" and loaded.user_path("nobody") == "popular"
    why = loaded.explain(user, item)
    assert why["path"] == "model" and why["contributions"] == []
    assert why["score"] == float(expected[1][0, 0]) == float((log[ITEM] == int(item)).sum() - (
        (log[ITEM] == int(item)) & (log[EVENT] == "return")).sum())  # fmt: skip
    if repeatable:
        repeat = RepeatRecommender(30.0, repeatable).fit(log)
        ids, _ = loaded.with_repeat_weight(1.0).recommend_batch(users, 20)
        np.testing.assert_array_equal(ids, repeat.recommend_batch(users, 20)[0])
    # the holdout: the packaged model scores what the baseline scores, for every user
    split = holdout(log, EvaluationSettings(holdout="last_days", holdout_days=14.0),
                    repeatable=repeatable)  # fmt: skip
    fitted = {
        "model": families.from_flat(family="popularity", repeatable_events=repeatable).fit(
            split.train, catalog_of()
        ),
        "popularity": PopularityRecommender(repeatable=repeatable).fit(split.train),
    }
    scores = evaluate_many(fitted, split.train, split.test, K, repeatable=repeatable)
    assert scores["model"].metrics["n_users"] > 200
    np.testing.assert_array_equal(
        scores["model"].per_user[f"ndcg_at_{K}"], scores["popularity"].per_user[f"ndcg_at_{K}"]
    )


def test_the_gate_serves_a_baseline_only_where_no_learned_champion_stands() -> None:
    """A baseline candidate that loses to nothing and beats nothing: promoted without a
    champion and over a baseline champion, never over a learned champion."""
    values = np.linspace(0.0, 1.0, 200)
    baselines = {"popularity": values, "recent_popularity": values}

    def gate(**kwargs) -> registry.Decision:
        return registry.decide("ndcg_at_10", values, baselines, **kwargs)

    assert not gate().promote  # a tie with the baselines: a learned model is not promoted
    first = gate(baseline="popularity")
    assert first.promote and first.reason == (
        "no champion: popularity is served as the baseline until a model beats it"
    )
    assert [c["other"] for c in first.comparisons] == ["popularity", "recent_popularity"]
    over_learned = gate(baseline="popularity", champion=values + 0.5)
    assert not over_learned.promote and over_learned.reason == (
        "popularity is a baseline: it never replaces a learned champion; the champion stays"
    )
    refresh = gate(baseline="repeat", champion=values, champion_baseline=True)
    assert refresh.promote and refresh.reason.startswith("the champion is a baseline too: repeat")


def test_the_served_baseline_is_the_best_on_validation() -> None:
    """The refused search's choice: the baseline with the best validation mean, as [train]
    values of the popularity family."""
    assert tuning.served_baseline({"popularity": 0.02, "repeat": 0.05}) == {
        "name": "repeat", "validation": 0.05,
        "params": {"family": "popularity", "repeat_weight": 1.0},
    }  # fmt: skip
    assert tuning.served_baseline({"popularity": 0.02, "repeat": 0.02})["params"] == {
        "family": "popularity", "repeat_weight": 0.0,
    }  # fmt: skip


# ------------------------------------------------------------------ through MLflow (e2e)


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> config.Config:
    """A RecoMart home in tmp_path with the project's recomart.toml and no marts yet."""
    yield project_home(tmp_path, monkeypatch)
    config.load.cache_clear()


def popular_only(cfg: config.Config) -> pd.DataFrame:
    """Marts where popularity is the whole signal (taste 0: every user draws items from the
    same long tail); returns the interactions."""
    interactions, catalog = planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, taste=0.0, seed=5
    )
    write_marts(cfg.paths.warehouse, interactions, catalog)
    return interactions


def with_tastes(cfg: config.Config) -> None:
    """Marts with a strong taste structure (85 % of each user's items in their own group)."""
    write_marts(cfg.paths.warehouse, *planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=5
    ))  # fmt: skip


def search(cfg: config.Config) -> dict:
    """A small model search: ALS and item-kNN, two folds."""
    space = {"als": {"factors": [8, 16]}, "itemknn": {"neighbours": [20]}}
    return tuning.run_tuning(config.with_train(cfg, tune={"folds": 2, "space": space}))


def champion(cfg: config.Config, summary: dict):
    client = MlflowClient(tracking_uri=summary["tracking_uri"])
    version = client.get_model_version_by_alias(cfg.settings.train.model_name, "champion")
    return version, client.get_run(version.run_id)


def batch_lists(cfg: config.Config) -> dict[str, list[str]]:
    """user_id -> item ids in rank order, from recommendations.user_recommendations."""
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        rows = con.sql(
            "select user_id, list(item_id order by rank) from"
            " recommendations.user_recommendations group by user_id"
        ).fetchall()
    return dict(rows)


@pytest.mark.e2e
def test_a_refused_search_serves_popularity_until_a_model_beats_it(
    cfg: config.Config, caplog: pytest.LogCaptureFixture
) -> None:
    interactions = popular_only(cfg)
    result = search(cfg)
    assert result["refused"].startswith("no candidate beats popularity on validation: best ")
    assert result["served_baseline"]["name"] == "popularity"
    assert result["best"] is None  # no learned candidate was chosen
    assert result["best_params"] == {"family": "popularity", "repeat_weight": 0.0}
    assert result["verdict"].startswith(
        "nothing beats popularity on validation: serving popularity until a model beats it ("
    )
    assert any(line.startswith("nothing beats popularity") for line in result["summary"])

    # what `recomart demo` does with the choice: train it; no champion yet, so it is promoted
    with caplog.at_level(logging.INFO, logger="training"):
        served = run_training(config.with_train(cfg, **result["best_params"]))
    assert served["family"] == "popularity" and served["promotion"]["promote"]
    reason = "no champion: popularity is served as the baseline until a model beats it"
    assert served["promotion"]["reason"] == reason
    assert f"Gate: promote ({reason})" in caplog.text
    # on the holdout the served model is the popularity baseline, to the last digit
    assert served["model"]["ndcg_at_10"] == served["popularity"]["ndcg_at_10"]
    version, run = champion(cfg, served)
    assert str(version.version) == str(served["model_version"]) == "1"
    assert run.data.tags["family"] == "popularity"

    # batch recommendations: every user's list is the popularity ranking of all the rows
    # (refit_on_all_data) minus the items they had (no event type repeatable here)
    marts = read_training_data(FeatureStore(cfg))
    assert len(marts.interactions) == len(interactions)
    lists = batch_lists(cfg)
    users = np.unique(marts.interactions[USER].to_numpy())
    expected, _ = PopularityRecommender().fit(marts.interactions).recommend_batch(users, K)
    names = marts.users.decode(users)
    assert sorted(lists) == sorted(names) and served["recommendations_rows"] == int(
        (expected != PAD_ITEM).sum()
    )
    for name, row in zip(names, expected, strict=True):
        assert lists[name] == marts.items.decode(row[row != PAD_ITEM]).tolist()
    # the package the API and `recomart recommend` load: the same lists, the model's path
    model = package.load_local(cfg.paths.models)
    assert model.family == "popularity"
    assert model.user_path(names[0]) == "model"
    assert [i for i, _ in model.recommend_items(names[0], K)] == lists[names[0]]

    # new data with tastes: ALS beats the baselines and the popularity champion, replaces it
    with_tastes(cfg)
    learned = run_training(cfg)
    assert learned["family"] == "als" and learned["promotion"]["promote"]
    compared = {c["other"]: c for c in learned["promotion"]["comparisons"]}
    assert compared["champion"]["passed"] and compared["champion"]["low"] > 0
    version, run = champion(cfg, learned)
    assert str(version.version) == "2" and run.data.tags["family"] == "als"
    assert package.load_local(cfg.paths.models).family == "als"


@pytest.mark.e2e
def test_a_refusal_never_replaces_a_learned_champion(cfg: config.Config) -> None:
    with_tastes(cfg)
    learned = run_training(cfg)
    assert learned["promotion"]["promote"]
    before = batch_lists(cfg)
    # the data turns to popularity only; the search refuses and its baseline is trained
    popular_only(cfg)
    result = search(cfg)
    assert result["best_params"] == {"family": "popularity", "repeat_weight": 0.0}
    served = run_training(config.with_train(cfg, **result["best_params"]))
    assert not served["promotion"]["promote"]
    assert served["promotion"]["reason"] == (
        "popularity is a baseline: it never replaces a learned champion; the champion stays"
    )
    version, run = champion(cfg, served)
    assert str(version.version) == "1" and run.data.tags["family"] == "als"
    assert package.load_local(cfg.paths.models).family == "als"
    assert batch_lists(cfg) == before  # the champion's recommendations stay


@pytest.mark.e2e
def test_the_repeat_baseline_is_served_when_it_is_the_best(cfg: config.Config) -> None:
    """Repeats allowed: the popularity family with repeat_weight 1 scores the repeat
    baseline's NDCG on the holdout (within rounding of tied repeat scores) and is promoted."""
    popular_only(cfg)
    repeats = config.with_train(
        cfg, family="popularity", repeat_weight=1.0, repeatable_events=REPEATABLE
    )
    served = run_training(repeats)
    assert served["promotion"]["promote"]
    assert served["promotion"]["reason"].startswith("no champion: repeat is served")
    assert served["model"]["ndcg_at_10"] == pytest.approx(served["repeat"]["ndcg_at_10"], abs=1e-4)


@pytest.mark.e2e
def test_a_model_that_fails_the_gate_with_no_champion_leaves_the_best_baseline_served(
    cfg: config.Config,
) -> None:
    """`recomart demo` trains what the search chose; when the gate does not promote it and no
    champion stands, the best baseline on the holdout is trained and served instead; with a
    champion, nothing more happens."""
    popular_only(cfg)
    weak = config.with_train(cfg, als={"factors": 2, "iterations": 1})  # learns next to nothing
    summary = run_training(weak)
    assert not summary["promotion"]["promote"] and summary["promotion"]["champion_value"] is None
    served = pipeline.serve_a_baseline(weak, summary)
    assert served["family"] == "popularity" and served["promotion"]["promote"]
    assert served["model"]["ndcg_at_10"] == served["popularity"]["ndcg_at_10"]
    version, run = champion(cfg, served)
    assert run.data.tags["family"] == "popularity"
    assert package.load_local(cfg.paths.models).family == "popularity"
    # a baseline champion now stands: a second failing model changes nothing more
    again = run_training(weak)
    assert not again["promotion"]["promote"]
    assert pipeline.serve_a_baseline(weak, again) is None
    assert champion(cfg, again)[0].version == version.version
