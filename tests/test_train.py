"""The training run end to end on a tiny marts warehouse: real DuckDB, implicit and MLflow.

The warehouse holds the shop's string ids (VARCHAR): users "u0001".., items "SKU-0001"..
"""

import json
import re
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from synthetic_marts import planted_interactions, write_marts

from models_ml import package
from models_ml.data import read_marts
from models_ml.evaluate import relevant_items
from models_ml.registry import LOGGED, REFITTED
from models_ml.split import EvaluationSettings, holdout, last_days
from models_ml.train import run_training
from models_ml.tune import TooSmallToTune, run_tuning, user_sample
from recomart import pipeline
from recomart.summary import render
from recomart_core import config
from recomart_core.schema import ITEM, RATING, USER

pytestmark = pytest.mark.e2e  # the train stage through a real MLflow store and registry

PROJECT_TOML = Path(__file__).resolve().parent.parent / "recomart.toml"
FACTORS = 8  # the fixture's [train] factors: not the project's 16, so its effect is visible
METRICS = ("precision_at_10", "recall_at_10", "ndcg_at_10")
# the gate compares with each; the repeat baseline only when items may come back
BASELINES = ("popularity", "recent_popularity")
WITH_REPEATS = (*BASELINES, "repeat")
MODEL_FILES = {
    "model.npz",
    "ids.npz",
    "user_items.npz",
    "repeats.npz",
    "params.json",
    "training.json",
    "items.parquet",
}


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> config.Config:
    """A RecoMart home in tmp_path: the project's recomart.toml with [train.als] factors = FACTORS,
    and a small marts warehouse."""
    toml, replaced = re.subn(
        r"(?m)^factors = 16(\s)", rf"factors = {FACTORS}\1", PROJECT_TOML.read_text()
    )
    assert replaced == 1  # the [train.als] line, not the tuning grid's `factors = [16, ...]`
    (tmp_path / "recomart.toml").write_text(toml)
    monkeypatch.setenv("RECOMART_HOME", str(tmp_path))
    monkeypatch.setenv("RECOMART_CONFIG", str(tmp_path / "recomart.toml"))
    monkeypatch.chdir(tmp_path)  # so a stray ./mlruns or ./mlflow.db would be seen
    config.load.cache_clear()
    cfg = config.load()
    assert cfg.settings.train.families["als"]["factors"] == FACTORS
    interactions, catalog = planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=5
    )
    write_marts(cfg.paths.warehouse, interactions, catalog)
    yield cfg
    config.load.cache_clear()


def test_run_training_logs_saves_and_reports(cfg: config.Config, tmp_path: Path) -> None:
    summary = run_training(cfg)

    # One MLflow run in the SQLite store under paths.mlflow, with metrics, params and tags.
    store = cfg.paths.mlflow / "mlflow.db"
    assert store.is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("recomart")
    assert experiment.artifact_location == (cfg.paths.mlflow / "artifacts").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [summary["run_id"]]
    run = runs[0]
    assert run.info.status == "FINISHED"
    for model in ("model", "popularity"):
        for metric in METRICS:
            assert run.data.metrics[f"{model}_{metric}"] == summary[model][metric]
    assert run.data.metrics["fit_seconds"] > 0
    assert summary["model"]["precision_at_10"] > summary["popularity"]["precision_at_10"]
    params = run.data.params
    train = cfg.settings.train
    assert params["als_factors"] == str(FACTORS)  # the fixture's override reached the run
    for name in ("alpha", "k"):
        assert params[name] == str(getattr(train, name)), name
    for name in ("factors", "iterations", "regularization"):  # [train.als] as als_<key>
        assert params[f"als_{name}"] == str(train.families["als"][name]), name
    assert params["event_weight_purchase"] == str(train.event_weights["purchase"])
    for name, value in train.evaluation.as_dict().items():
        assert params[f"evaluation_{name}"] == str(value), name
    assert params["holdout_cutoff"] == summary["holdout_cutoff"]
    # auto kept the last 30 days: they score far more than min_eval_users 50 users here
    evaluation = summary["evaluation"]
    assert evaluation["strategy"] == params["holdout_strategy"] == "last_days"
    assert evaluation["requested"] == "auto" and evaluation["cutoff"] == summary["holdout_cutoff"]
    scored = summary["n_eval_users"]
    assert re.fullmatch(
        rf"last 30 days score {scored} users >= [\d.]+ \(min_eval_users 50, min_eval_share 0.5"
        rf" of the \d+ leave-last-1 scores\): last 30 days",
        evaluation["reason"],
    ), evaluation["reason"]
    assert run.data.tags["holdout_strategy"] == "last 30 days"
    assert run.data.tags["holdout_reason"] == evaluation["reason"]
    assert run.data.metrics["n_eval_users"] == scored == evaluation["n_eval_users"]
    # recency counts from the newest train event: the last one before the cutoff
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        interactions = con.sql("select event_at from marts.interactions").df()["event_at"]
    cutoff = pd.Timestamp(summary["holdout_cutoff"])
    assert pd.Timestamp(evaluation["reference_time"]) == interactions[interactions < cutoff].max()
    assert params["n_train_rows"] == str(summary["sizes"]["n_train_rows"])
    assert run.data.tags["warehouse"] == str(cfg.paths.warehouse)
    assert run.data.tags["training_rows"] == str(summary["sizes"]["n_train_rows"])
    sizes = summary["sizes"]
    assert sizes["n_train_rows"] + sizes["n_test_rows"] == sizes["n_interactions"] == 8000
    assert sizes["n_catalog_items"] == 120

    # The model: saved under paths.models and logged as run artifacts under "model".
    model_dir = cfg.paths.models / package.MODEL_DIR
    assert {p.name for p in model_dir.iterdir()} == MODEL_FILES
    assert json.loads((model_dir / "training.json").read_text())["run_id"] == run.info.run_id
    logged = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "model")}
    assert logged == MODEL_FILES
    run_artifacts = cfg.paths.mlflow / "artifacts" / run.info.run_id / "artifacts" / "model"
    assert {p.name for p in run_artifacts.iterdir()} == MODEL_FILES
    plots = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"metrics_at_k.png", "long_tail.png"}
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"lineage.json", "promotion.json", "eval"} <= top
    # per-user NDCG of every model on the same users: their means are the logged metrics
    per_user = pd.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id,
            artifact_path="eval/per_user_ndcg_at_10.parquet",
            tracking_uri=summary["tracking_uri"],
        )
    )
    assert list(per_user.columns) == [USER, "model", *BASELINES]
    assert len(per_user) == scored and per_user[USER].is_monotonic_increasing
    for name in ("model", *BASELINES):
        assert per_user[name].mean() == pytest.approx(run.data.metrics[f"{name}_ndcg_at_10"])

    # Lineage: source tables, load ids, cutoff, matrix hash; baselines and cold users beside.
    tags = run.data.tags
    assert tags["source_tables"] == "marts.interactions,marts.item_features"
    assert tags["latest_load_id"] == "synthetic"
    assert len(tags["train_matrix_sha256"]) == 64
    assert summary["lineage"]["train_load_ids"] == ["synthetic"]
    assert summary["lineage"]["holdout_cutoff"] == summary["holdout_cutoff"]
    for name in ("model", "popularity", "recent_popularity"):
        for metric in (*METRICS, "map_at_10", "hit_rate_at_10", "catalog_coverage_at_10"):
            assert 0 <= run.data.metrics[f"{name}_{metric}"] <= 1
    # cold users: those whose first interaction falls in the test period (5 on this data)
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        first_seen = con.sql(
            "select user_id, min(event_at) as t from marts.interactions group by 1"
        ).df()
    new_users = int((first_seen["t"] >= pd.Timestamp(summary["holdout_cutoff"])).sum())
    assert new_users > 0
    for name in ("model", "popularity", "recent_popularity"):
        assert summary["cold_users"][name]["n_users"] == new_users, name
    assert sizes["n_cold_eval_users"] == new_users
    # planted ratings depend on the user-item match, not on biases: only sanity here
    assert 0 < run.data.metrics["rating_mae"] <= run.data.metrics["rating_rmse"] < 4
    assert summary["rating"]["predictor"] == "biased baseline mu + b_u + b_i"

    # Registered, champion (first model beating the baselines), batch table written.
    promotion = summary["promotion"]
    assert promotion["promote"] and summary["model_version"] == "1"
    assert promotion["n_users"] == scored and promotion["reason"].startswith("first champion")
    # every baseline, clearly beaten; nothing is repeatable by default, so there is no repeat
    # baseline (it would be popularity again)
    assert [c["other"] for c in promotion["comparisons"]] == list(BASELINES)
    assert "repeat" not in summary
    assert evaluation["repeat_policy"] == {
        "repeatable_events": [],
        "excluded": "every item the user had (no event type is repeatable)",
        "repeat_weight": 0.0,
        "repeat_half_life_days": 30.0,
    }
    assert (tags["repeatable_events"], tags["repeat_policy"]) == (
        "none", "every item the user had (no event type is repeatable)",
    )  # fmt: skip
    for comparison in promotion["comparisons"]:
        assert 0 < comparison["low"] <= comparison["gain"] <= comparison["high"]
        assert run.data.metrics[f"gate_{comparison['other']}_ci_low"] == comparison["low"]
    assert client.get_model_version_by_alias("recomart-recommender", "champion").version == 1
    assert tags["promoted"] == "true"
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        table = con.sql("select * from recommendations.user_recommendations").df()
        types = dict(
            con.sql(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = 'recommendations' and table_name = 'user_recommendations'"
            ).fetchall()
        )
        shop_users = set(con.sql("select user_id from marts.interactions").df()["user_id"])
        catalog = con.sql("select item_id, title, category, price from marts.item_features").df()
    shop_items = set(catalog["item_id"])
    model = package.load_recommender(model_dir)
    assert model.params()["settings"]["factors"] == FACTORS  # ... and the saved model
    assert types["user_id"] == types["item_id"] == "VARCHAR"
    assert table["user_id"].nunique() == len(model.user_ids) == 300
    assert set(table["user_id"]) == shop_users and set(table["item_id"]) <= shop_items
    assert set(table["rank"]) == set(range(1, 11)) and (table["model_version"] == "1").all()
    # each row carries its item's catalog attributes (from the feature store's training set)
    shown = table.merge(catalog, on="item_id", how="left", suffixes=("", "_catalog"))
    for column in ("title", "category", "price"):
        assert shown[column].notna().all() and shown[column].equals(shown[f"{column}_catalog"])
    assert types["title"] == "VARCHAR" and types["price"] == "DOUBLE"
    assert len(table) == summary["recommendations_rows"] == 3000
    first_user = model.users.decode(model.user_ids[:1])[0]
    assert first_user == "u0001"
    first = table[table["user_id"] == first_user].sort_values("rank")
    assert first["item_id"].tolist() == [i for i, _ in model.recommend_items(first_user, 10)]
    assert all(i.startswith("SKU-") for i in first["item_id"])
    items = pd.read_parquet(model_dir / "items.parquet")
    assert set(items["item_id"]) == shop_items and len(items) == 120
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()

    # The pyfunc model, loaded through MLflow, recommends what the saved model recommends, in
    # shop ids (strings); an unknown user gets the cold-start list.
    users = [*model.users.decode(model.user_ids[:3]).tolist(), "no-such-user"]
    pyfunc = mlflow.pyfunc.load_model(summary["model_uri"])
    predicted = pyfunc.predict(pd.DataFrame({USER: users}), params={"k": 5})
    item_ids, _ = model.recommend_ids(users, 5)
    assert predicted[USER].tolist() == [u for u in users for _ in range(5)]
    assert predicted[ITEM].tolist() == item_ids.ravel().tolist()
    assert all(isinstance(i, str) and i in shop_items for i in predicted[ITEM])
    assert predicted[ITEM].tolist()[-5:] == [i for i, _ in model.recommend_items("nobody", 5)]
    signature = pyfunc.metadata.signature
    assert [(c["name"], c["type"]) for c in signature.inputs.to_dict()] == [(USER, "string")]
    outputs = {c["name"]: c["type"] for c in signature.outputs.to_dict()}
    assert (outputs[USER], outputs[ITEM]) == ("string", "string")

    # The report holds the same numbers.
    report = json.loads((cfg.paths.reports / "train_metrics.json").read_text())
    assert report == json.loads(json.dumps(summary))
    for model in ("model", "popularity"):
        for metric in METRICS:
            assert report[model][metric] == run.data.metrics[f"{model}_{metric}"]
    assert report["n_eval_users"] == summary["model"]["n_users"] > 0


def test_another_family_trains_registers_and_serves_like_als(cfg: config.Config) -> None:
    """An ALS champion, then the EASE + ALS hybrid: logged, gated against the ALS champion
    (refitted from its saved recipe when needed), saved and loaded by the pyfunc model alike."""
    first = run_training(cfg)
    hybrid = config.with_train(cfg, family="hybrid", ease={"l2": 20.0}, hybrid={"weight": 0.5})
    summary = run_training(hybrid)
    assert (first["family"], summary["family"]) == ("als", "hybrid")
    run = MlflowClient(tracking_uri=summary["tracking_uri"]).get_run(summary["run_id"])
    assert run.data.params["family"] == "hybrid" and run.data.tags["family"] == "hybrid"
    assert summary["model"]["ndcg_at_10"] > summary["popularity"]["ndcg_at_10"]
    champion = {c["other"] for c in summary["promotion"]["comparisons"]}
    assert "champion" in champion  # the gate compared it with the ALS champion
    for key in ("novelty_at_10", "popularity_bias_at_10", "catalog_coverage_at_10"):
        assert run.data.metrics[f"model_{key}"] == summary["model"][key]
    logged = mlflow.artifacts.download_artifacts(
        run_id=summary["run_id"], artifact_path=package.RUN_ARTIFACTS,
        tracking_uri=summary["tracking_uri"],
    )  # fmt: skip
    model = package.load_recommender(logged)
    assert model.family == "hybrid"
    users = [*model.users.decode(model.user_ids[:3]).tolist(), "no-such-user"]
    pyfunc = mlflow.pyfunc.load_model(summary["model_uri"])
    predicted = pyfunc.predict(pd.DataFrame({USER: users}), params={"k": 5})
    assert predicted[ITEM].tolist() == model.recommend_ids(users, 5)[0].ravel().tolist()


def test_the_champion_moves_only_for_a_better_model(cfg: config.Config) -> None:
    first = run_training(cfg)
    client = MlflowClient(tracking_uri=first["tracking_uri"])
    champion = client.get_model_version_by_alias("recomart-recommender", "champion")
    table_sql = "select distinct model_version from recommendations.user_recommendations"

    # The same model again: a tie, not promoted; the alias, the local model and the table stay.
    second = run_training(cfg)
    assert second["model_version"] == "2" and not second["promotion"]["promote"]
    assert second["promotion"]["champion_scored_by"] == LOGGED  # its per-user values
    n = second["n_eval_users"]
    reason = (
        f"ndcg_at_10 gain over champion +0.0000, 95% CI [+0.0000, +0.0000] over {n} users:"
        " within noise"
    )
    assert second["promotion"]["reason"] == reason
    assert client.get_model_version_by_alias("recomart-recommender", "champion").version == 1
    run = client.get_run(second["run_id"])
    assert run.data.tags["promoted"] == "false"
    assert run.data.tags["promotion_reason"] == reason
    logged = mlflow.artifacts.load_dict(f"runs:/{second['run_id']}/promotion.json")
    assert logged["reason"] == reason and logged["n_users"] == n
    assert logged["champion_value"] == pytest.approx(first["model"]["ndcg_at_10"])
    training = json.loads((cfg.paths.models / package.MODEL_DIR / "training.json").read_text())
    assert training["run_id"] == first["run_id"] == champion.run_id
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        assert con.sql(table_sql).fetchall() == [("1",)]

    # A worse model (1 factor, 1 iteration): not promoted either.
    third = run_training(config.with_train(cfg, als={"factors": 1, "iterations": 1}))
    assert not third["promotion"]["promote"]
    assert third["model"]["ndcg_at_10"] < first["model"]["ndcg_at_10"]
    assert client.get_model_version_by_alias("recomart-recommender", "champion").version == 1

    # New data (a different holdout): the champion's recipe is refitted and scored on it.
    with duckdb.connect(str(cfg.paths.warehouse)) as con:
        con.execute(
            "insert into marts.interactions select * replace ("
            " 'new' || interaction_key as interaction_key,"
            " event_at + interval 1 day as event_at)"
            " from marts.interactions where substr(user_id, 2)::int % 7 = 0 and event_at > "
            "(select max(event_at) - interval 10 day from marts.interactions)"
        )
    fourth = run_training(cfg)
    assert fourth["promotion"]["champion_scored_by"] == REFITTED
    assert fourth["holdout_cutoff"] != first["holdout_cutoff"]
    # Same recipe, same data: the refitted champion scores what the candidate scores.
    assert fourth["promotion"]["champion_value"] == pytest.approx(fourth["model"]["ndcg_at_10"])
    assert not fourth["promotion"]["promote"]


def with_evaluation(cfg: config.Config, **settings) -> config.Config:
    return config.with_train(cfg, evaluation=settings)


def test_too_few_scored_users_promote_nothing(cfg: config.Config) -> None:
    # 300 users: auto falls back to leave-last-1, which still scores fewer than 10,000 users
    summary = run_training(with_evaluation(cfg, min_eval_users=10_000))
    evaluation, promotion = summary["evaluation"], summary["promotion"]
    last_30 = last_days(read_interactions(cfg), 30)
    scored_30 = len(relevant_items(last_30.train, last_30.test)[0])
    assert re.fullmatch(
        rf"last 30 days score {scored_30} users < 10000 \(min_eval_users 10000, min_eval_share"
        rf" 0.5 of the \d+ leave-last-1 scores\): leave-last-1",
        evaluation["reason"],
    ), evaluation["reason"]
    n = summary["n_eval_users"]
    assert not promotion["promote"] and promotion["n_users"] == n
    assert promotion["reason"] == (
        f"ndcg_at_10 scored on {n} users < min_eval_users 10000: too few to tell a gain from"
        " noise; no champion is set"
    )
    client = MlflowClient(tracking_uri=summary["tracking_uri"])
    run = client.get_run(summary["run_id"])
    assert run.data.tags["promoted"] == "false"
    assert run.data.tags["promotion_reason"] == promotion["reason"]
    assert run.data.tags["holdout_strategy"] == "leave-last-1"
    assert "holdout_cutoff" not in run.data.params  # leave-last-n has none
    assert client.get_registered_model("recomart-recommender").aliases == {}
    assert not (cfg.paths.models / package.MODEL_DIR).exists()  # nothing to serve was installed


def read_interactions(cfg: config.Config) -> pd.DataFrame:
    """marts.interactions as training reads it (ids as codes)."""
    return read_marts(cfg.paths.warehouse).interactions


def test_leave_last_n_runs_through_training_tuning_and_the_summary(cfg: config.Config) -> None:
    # leave-last-2: on this data leave-last-1 scores 137 users and ALS's gain over popularity is
    # within noise (CI about [-0.01, +0.10]); two test items per user separate them clearly.
    leave = with_evaluation(cfg, holdout="leave_last_n", leave_last_n=2)
    summary = run_training(leave)
    interactions = read_interactions(cfg)
    expected = holdout(interactions, EvaluationSettings(holdout="leave_last_n", leave_last_n=2))
    assert summary["holdout_cutoff"] is None and summary["lineage"]["holdout_cutoff"] is None
    evaluation = summary["evaluation"]
    assert evaluation["strategy"] == evaluation["requested"] == "leave_last_n"
    assert evaluation["reason"] == "holdout = leave_last_n"
    counts = interactions["user_id"].value_counts()
    assert summary["sizes"]["n_test_rows"] == 2 * (counts > 2).sum() == len(expected.test)
    assert evaluation["reference_time"] == expected.reference_time.isoformat()
    assert summary["promotion"]["promote"]  # planted tastes: ALS beats both baselines clearly
    training = json.loads((cfg.paths.models / package.MODEL_DIR / "training.json").read_text())
    assert training["holdout_cutoff"] is None
    text = render(leave)
    assert f"Model: als (holdout: leave-last-2, {summary['n_eval_users']} users scored)" in text

    small = config.with_train(
        leave,
        tune={"n_trials": 2, "space": {"als": {"factors": [4, 8], "regularization": [0.05]}}},
    )
    result = run_tuning(small)
    assert result["holdout"]["strategy"] == result["validation"]["strategy"] == "leave_last_n"
    assert result["holdout_cutoff"] is None and result["validation_cutoff"] is None
    # validation: each user's last two training interactions, for users with 5 or more in all
    assert result["n_validation_rows"] == 2 * (counts > 4).sum()
    assert result["n_validation_users"] > 50


def test_tuning_uses_validation_folds_inside_the_training_period(cfg: config.Config) -> None:
    small = config.with_train(
        cfg,
        tune={
            "validation_days": 20,
            "folds": 3,
            "n_trials": 3,
            "space": {
                "als": {"factors": [4, 16], "regularization": [0.05], "alpha": [5.0, 20.0]},
                "ease": {"l2": [10.0, 100.0]},
                "hybrid": {"weight": [0.5]},
            },
        },
    )
    result = run_tuning(small)
    families = [t["family"] for t in result["trials"]]
    assert families[:3] == ["als", "ease", "hybrid"]  # each family's [train] point first
    assert families[3:] == ["als"] * 3 + ["ease"] * 2 + ["hybrid"]
    # fold 1 validates on the last 20 days of the training rows (all before the holdout
    # cutoff), each next fold on the 20 days before
    holdout = pd.Timestamp(result["holdout_cutoff"])
    cutoffs = [pd.Timestamp(fold["cutoff"]) for fold in result["folds"]]
    assert len(cutoffs) == 3 and cutoffs[0] == pd.Timestamp(result["validation_cutoff"])
    for newer, older in zip([holdout, *cutoffs], cutoffs, strict=False):
        assert pd.Timedelta(days=19) < newer - older < pd.Timedelta(days=21)
    for trial in result["trials"]:
        assert len(trial["per_fold"]) == 3
        assert trial["mean"] == pytest.approx(sum(trial["per_fold"]) / 3)
    best = result["best"]
    assert result["best_mean"] == max(result["trials"], key=lambda t: t["mean"])
    assert best["trial"] == result["decision"]["chosen"]
    assert result["best_params"] == best["params"]
    als, ease = result["best_by_family"]["als"], result["best_by_family"]["ease"]
    hybrid = result["trials"][-1]["params"]
    assert hybrid == {**als["params"], **ease["params"], "hybrid.weight": 0.5, "family": "hybrid"}
    saved = json.loads((cfg.paths.reports / "tuning.json").read_text())
    assert saved["best_params"] == result["best_params"] and len(saved["trials"]) == 9
    client = MlflowClient(tracking_uri=f"sqlite:///{cfg.paths.mlflow / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("recomart-tuning")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["best_family"] == best["family"]


def test_tune_apply_writes_the_choice_into_the_config_file(cfg: config.Config) -> None:
    path = config.config_path()
    before = path.read_text()
    space = {"ease": {"l2": [10.0, 100.0]}, "itemknn": {"neighbours": [20]}}
    small = config.with_train(cfg, tune={"folds": 1, "space": space})
    result = pipeline.tune(small, apply=True)
    config.load.cache_clear()
    train = config.load().settings.train
    chosen = result["best_params"]
    assert train.family == chosen["family"] in ("ease", "itemknn")
    for key, value in chosen.items():  # "<family>.<key>": in the family's table [train.<family>]
        table, _, name = key.rpartition(".")
        assert (train.families[table][name] if table else getattr(train, key)) == value
    assert f"[train.{chosen['family']}]" in path.read_text()
    after = path.read_text()
    assert "# The recommender (models_ml/)" in after  # comments kept
    assert len(after.splitlines()) - len(before.splitlines()) <= 2 * len(chosen)


def test_relevant_items_are_new_test_items_of_train_users() -> None:
    train = pd.DataFrame({USER: [1, 1, 2], ITEM: [10, 11, 10], RATING: [5.0, 5.0, 5.0]})
    test = pd.DataFrame(
        {
            USER: [1, 1, 1, 2, 2, 3],
            ITEM: [10, 12, 12, 10, 13, 14],
            RATING: [5.0, 4.0, 4.0, 2.0, 1.0, 5.0],
        }
    )
    # user 1: 10 is known, 12 is new (twice); user 2: 10 known, 13 new; user 3 is not in train
    users, relevant = relevant_items(train, test)
    assert users.tolist() == [1, 2]
    assert [r.tolist() for r in relevant] == [[12], [13]]
    # from rating 3 on, user 2's only new item (rating 1) stops counting
    users, relevant = relevant_items(train, test, min_rating=3)
    assert users.tolist() == [1] and [r.tolist() for r in relevant] == [[12]]
    assert isinstance(relevant[0], np.ndarray)


def test_tuning_leaves_out_the_dense_families_above_ease_max_items(cfg: config.Config) -> None:
    space = {"als": {"factors": [8]}, "ease": {"l2": [10.0]}, "hybrid": {}}
    n_items = len(read_marts(cfg.paths.warehouse).items)
    tune = {"folds": 1, "space": space, "max_users": 100}
    small = config.with_train(cfg, ease={"max_items": n_items - 1}, tune=tune)
    result = run_tuning(small)  # a dense EASE fit would raise ValueError here
    # the whole plan fits the budget on every user: no sample (tests/test_tune.py has one)
    assert result["n_search_users"] == result["n_train_users"]
    assert result["rescaling"]["searched_on"] == "all users"
    reason = f"{n_items} items, above its max_items = {n_items - 1} ([train.ease])"
    assert result["skipped"] == {"ease": reason, "hybrid": reason}
    assert [t["family"] for t in result["trials"]] == ["als"] and result["best"]["family"] == "als"


def test_user_sample_keeps_every_row_of_a_seeded_sample_of_users() -> None:
    rows = pd.DataFrame({USER: np.repeat(np.arange(500), 3), ITEM: np.arange(1500) % 7})
    sample = user_sample(rows, 100, seed=3)
    assert sample[USER].nunique() == 100 and len(sample) == 300
    assert sample.equals(user_sample(rows, 100, seed=3))
    assert not sample.equals(user_sample(rows, 100, seed=4))
    assert user_sample(rows, None, seed=3) is rows and user_sample(rows, 500, seed=3) is rows


def test_the_demo_search_steps_aside_on_data_too_small_for_a_validation_fold(
    cfg: config.Config,
) -> None:
    """A validation window longer than the whole history leaves no fold: `make tune` fails with
    that reason, the demo's search returns None (and the demo trains [train] as written)."""
    small = config.with_train(
        cfg, evaluation={"holdout": "last_days"}, tune={"validation_days": 100_000}
    )
    with pytest.raises(TooSmallToTune, match="too small to carve a validation split"):
        pipeline.tune(small)
    assert pipeline.tune(small, or_skip=True) is None


def test_a_repeat_policy_runs_through_training_the_gate_and_the_reports(
    cfg: config.Config,
) -> None:
    """Views and carts repeatable, the model blending its scores with the repeat scores: the
    same policy in the baselines, the relevance, the gate, the installed model, the batch
    table, the report, the run and the summary."""
    repeat_cfg = config.with_train(
        cfg, repeatable_events=["view", "add_to_cart"], repeat_weight=0.5
    )
    summary = run_training(repeat_cfg)
    policy = {
        "repeatable_events": ["view", "add_to_cart"],
        "excluded": "items the user had with purchase, or returned; items had only with view,"
        " add_to_cart may come back",
        "repeat_weight": 0.5,
        "repeat_half_life_days": 30.0,
    }
    assert summary["evaluation"]["repeat_policy"] == policy
    # relevance follows the policy: the users scored are those with a test item that is new to
    # them or that they had only viewed or carted
    split = holdout(
        read_interactions(cfg), repeat_cfg.settings.train.evaluation, 0, ["view", "add_to_cart"]
    )
    users, _ = relevant_items(split.train, split.test, repeatable=["view", "add_to_cart"])
    default_users, _ = relevant_items(split.train, split.test)
    assert summary["n_eval_users"] == len(users) > len(default_users)
    run = MlflowClient(tracking_uri=summary["tracking_uri"]).get_run(summary["run_id"])
    assert run.data.tags["repeatable_events"] == "view,add_to_cart"
    assert run.data.tags["repeat_policy"] == policy["excluded"]
    assert run.data.params["repeat_weight"] == "0.5"
    # the gate compares the model with every baseline, the repeat baseline included
    promotion = summary["promotion"]
    assert [c["other"] for c in promotion["comparisons"]] == list(WITH_REPEATS)
    repeat = next(c for c in promotion["comparisons"] if c["other"] == "repeat")
    assert repeat["other_value"] == pytest.approx(summary["repeat"]["ndcg_at_10"])
    assert run.data.metrics["gate_repeat_ci_low"] == repeat["low"]
    # on this data (planted tastes, repeats at random) the repeat baseline beats popularity,
    # the blended model beats all three (NDCG@10 about 0.43 vs repeat 0.35, popularity 0.26)
    assert summary["repeat"]["ndcg_at_10"] > summary["popularity"]["ndcg_at_10"]
    assert promotion["promote"], promotion["reason"]
    # the installed model carries the policy; the batch table never lists an item the user
    # bought, and does list items the user viewed or carted
    model = package.load_local(cfg.paths.models)
    assert (model.repeatable_events, model.repeat_weight) == (["view", "add_to_cart"], 0.5)
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        known = con.sql(
            "select bool_or(i.event_type = 'purchase') as bought"
            " from recommendations.user_recommendations as r"
            " join marts.interactions as i using (user_id, item_id)"
            " group by r.user_id, r.item_id"
        ).df()
        n_users = con.execute("select count(distinct user_id) from marts.interactions").fetchone()[
            0
        ]
    assert len(known) > n_users  # more than one known item per list, on average
    assert not known["bought"].any()
    # recomart summary prints the policy and the repeat baseline beside popularity
    text = "\n".join(render(repeat_cfg).splitlines())
    assert (
        f"  repeat policy: never recommended again: {policy['excluded']}; repeat_weight 0.5" in text
    )
    assert re.search(r"(?m)^  repeat +\d\.\d{4} +\d\.\d{4} +\d\.\d{4}$", text)
