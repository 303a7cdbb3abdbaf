"""End to end: every stage on small generated data with the real tools (dlt, dbt, Soda, MLflow).

The expected values come from the generator's CSV and manifest, computed here by hand with pandas,
independently of the SQL that produced the marts.
"""

from __future__ import annotations

import json
import math
import re

import duckdb
import mlflow
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e


def _sql(run: dict, query: str) -> pd.DataFrame:
    with duckdb.connect(str(run["cfg"].paths.warehouse), read_only=True) as con:
        return con.sql(query).df()


def _count(run: dict, query: str) -> int:
    return int(_sql(run, query).iloc[0, 0])


@pytest.fixture(scope="module")
def csv_rows(pipeline_run: dict) -> pd.DataFrame:
    """The generated CSV with its 1-based line numbers, as text."""
    path = pipeline_run["cfg"].paths.generated / pipeline_run["manifest"]["files"]["interactions"]
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows["line"] = np.arange(2, len(rows) + 2)
    return rows


@pytest.fixture(scope="module")
def expected_clean(pipeline_run: dict, csv_rows: pd.DataFrame) -> pd.DataFrame:
    """Clean interactions computed by hand: drop the manifest's defect lines except missing
    ratings (kept, imputed), then keep the last line of any same user/item/event/time group."""
    defects = pipeline_run["manifest"]["defects"]
    dropped = {
        line for name, d in defects.items() if name != "missing_rating" for line in d["lines"]
    }
    rows = csv_rows[~csv_rows["line"].isin(dropped)].copy()
    # ids stay text, as the file writes them
    rows["rating"] = pd.to_numeric(rows["rating"].replace("", np.nan))
    rows["event_at"] = pd.to_datetime(rows["timestamp"])
    rows = rows.sort_values("line").drop_duplicates(
        ["user_id", "item_id", "event_type", "event_at"], keep="last"
    )
    catalog = json.loads(
        (
            pipeline_run["cfg"].paths.generated / pipeline_run["manifest"]["files"]["catalog"]
        ).read_text()
    )
    categories = pd.DataFrame(catalog)[["id", "category", "price"]].rename(
        columns={"id": "item_id"}
    )
    categories["item_id"] = categories["item_id"].astype(str)  # the API's integers, as text
    return rows.merge(categories, on="item_id")


def test_every_csv_row_is_loaded_or_quarantined(pipeline_run: dict) -> None:
    manifest = pipeline_run["manifest"]
    raw = _count(pipeline_run, "select count(*) from raw_interactions.interactions")
    quarantined = _sql(
        pipeline_run,
        "select reason, count(*) as n from raw_interactions.interactions_quarantine group by 1",
    )
    assert raw + quarantined["n"].sum() == manifest["total_rows"]
    # only rows that cannot be typed are quarantined; a repeated line is loaded (dbt flags it)
    assert quarantined.set_index("reason")["n"].to_dict() == {
        "unparseable timestamp": manifest["defects"]["bad_timestamp"]["count"]
    }
    bad_lines = _sql(
        pipeline_run,
        "select source_line from raw_interactions.interactions_quarantine"
        " where reason = 'unparseable timestamp' order by 1",
    )["source_line"].tolist()
    assert bad_lines == manifest["defects"]["bad_timestamp"]["lines"]


def test_every_raw_row_is_clean_or_rejected_with_its_reason(pipeline_run: dict) -> None:
    manifest = pipeline_run["manifest"]
    raw = _count(pipeline_run, "select count(*) from raw_interactions.interactions")
    clean = _count(pipeline_run, "select count(*) from marts.interactions")
    rejected = _sql(
        pipeline_run,
        "select rejection_reason, count(*) as n from marts.rejected_interactions group by 1",
    )
    reasons = dict(zip(rejected["rejection_reason"], rejected["n"], strict=True))
    assert raw == clean + sum(reasons.values())
    assert reasons["rating out of range"] == manifest["defects"]["rating_out_of_range"]["count"]
    assert reasons["unknown item_id"] == manifest["defects"]["unknown_item"]["count"]
    assert reasons["duplicate event"] == manifest["defects"]["duplicate"]["count"]
    imputed = _count(
        pipeline_run, "select count(*) from marts.interactions where is_rating_imputed"
    )
    assert imputed == manifest["defects"]["missing_rating"]["count"]


def test_second_ingest_adds_nothing(pipeline_run: dict) -> None:
    assert pipeline_run["counts_second_ingest"] == pipeline_run["counts_first_ingest"]
    assert (
        pipeline_run["counts_first_ingest"]["raw_catalog.products"]
        == pipeline_run["manifest"]["catalog"]["products"]
    )


def test_clean_interactions_match_the_hand_computed_set(
    pipeline_run: dict, expected_clean: pd.DataFrame
) -> None:
    mart = _sql(
        pipeline_run, "select user_id, item_id, event_type, event_at from marts.interactions"
    )
    assert len(mart) == len(expected_clean)
    key = ["user_id", "item_id", "event_type", "event_at"]
    merged = mart.merge(expected_clean[key], on=key, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_user_features_equal_hand_computed_values(
    pipeline_run: dict, expected_clean: pd.DataFrame
) -> None:
    features = _sql(pipeline_run, "select * from marts.user_features").set_index("user_id")
    assert len(features) == expected_clean["user_id"].nunique()
    reference = expected_clean["event_at"].max()
    busiest = expected_clean["user_id"].value_counts()
    for user_id in [*busiest.index[:3], *busiest.index[-2:]]:
        mine = expected_clean[expected_clean["user_id"] == user_id]
        observed = mine["rating"].dropna()
        got = features.loc[user_id]
        assert got["interaction_count"] == len(mine)
        assert got["rated_count"] == len(observed)
        assert got["avg_rating"] == pytest.approx(observed.mean())
        assert got["min_rating"] == observed.min() and got["max_rating"] == observed.max()
        assert got["active_days"] == mine["event_at"].dt.date.nunique()
        assert got["category_count"] == mine["category"].nunique()
        counts = mine["category"].value_counts()
        assert got["favourite_category"] == min(counts[counts == counts.max()].index)
        assert got["days_since_last_interaction"] == (reference - mine["event_at"].max()).days
        if len(observed) > 1:
            assert got["rating_std"] == pytest.approx(observed.std(ddof=1))


def test_item_features_equal_hand_computed_values(
    pipeline_run: dict, expected_clean: pd.DataFrame
) -> None:
    features = _sql(pipeline_run, "select * from marts.item_features").set_index("item_id")
    assert len(features) == pipeline_run["manifest"]["catalog"]["products"]
    half_life = pipeline_run["cfg"].settings.transform.feature_half_life_days
    reference = expected_clean["event_at"].max()
    busiest = expected_clean["item_id"].value_counts()
    for item_id in [*busiest.index[:3], busiest.index[-1]]:
        mine = expected_clean[expected_clean["item_id"] == item_id]
        got = features.loc[item_id]
        assert got["interaction_count"] == len(mine)
        assert got["user_count"] == mine["user_id"].nunique()
        assert got["avg_rating"] == pytest.approx(mine["rating"].dropna().mean())
        age_days = (reference - mine["event_at"]).dt.total_seconds() / 86400
        decay = np.exp(-math.log(2) * age_days / half_life).sum()
        assert got["popularity_score"] == pytest.approx(decay, abs=1e-6)  # dbt rounds to 6 places
    cold = sorted(set(features.index) - set(expected_clean["item_id"]))
    assert (features.loc[cold, "interaction_count"] == 0).all()
    assert len(cold) >= pipeline_run["manifest"]["cold_items"]


def test_top10_excludes_what_the_user_already_had(pipeline_run: dict) -> None:
    from models_ml import package

    metrics = json.loads((pipeline_run["cfg"].paths.reports / "train_metrics.json").read_text())
    model = package.load_local(pipeline_run["cfg"].paths.models)
    cutoff = metrics["holdout_cutoff"]
    train = _sql(
        pipeline_run,
        "select user_id::varchar as user_id, item_id::varchar as item_id"
        f" from marts.interactions where event_at < '{cutoff}'",
    )
    k = pipeline_run["cfg"].settings.train.k
    for user_id in train["user_id"].value_counts().index[:20]:
        recommended = [item for item, _ in model.recommend_items(user_id, k, exclude_known=True)]
        assert len(recommended) == k
        had = set(train.loc[train["user_id"] == user_id, "item_id"])
        assert not had & set(recommended)


def test_mlflow_run_has_metrics_for_model_and_baseline(pipeline_run: dict) -> None:
    store = pipeline_run["cfg"].paths.mlflow / "mlflow.db"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("recomart")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    k = pipeline_run["cfg"].settings.train.k
    for model in ("model", "popularity"):
        for name in ("precision", "recall", "ndcg"):
            assert 0 <= metrics[f"{model}_{name}_at_{k}"] <= 1
    assert metrics[f"model_ndcg_at_{k}"] > metrics[f"popularity_ndcg_at_{k}"]
    train = pipeline_run["cfg"].settings.train
    assert runs[0].data.params["als_factors"] == str(train.families["als"]["factors"])


def test_quality_gate_passed_and_summary_says_so(pipeline_run: dict) -> None:
    assert "Quality gate: PASSED" in pipeline_run["summary"]
    assert "popularity" in pipeline_run["summary"]


def test_auto_holdout_keeps_the_last_days_on_the_demo_data(pipeline_run: dict) -> None:
    """The generated data spans six months and every active customer comes back: the last 30
    days score far more than min_eval_users, so auto keeps them (and the gate can promote)."""
    metrics = json.loads((pipeline_run["cfg"].paths.reports / "train_metrics.json").read_text())
    evaluation = metrics["evaluation"]
    scored = metrics["n_eval_users"]
    assert evaluation["strategy"] == "last_days" and evaluation["requested"] == "auto"
    assert re.fullmatch(
        rf"last 30 days score {scored} users >= [\d.]+ \(min_eval_users 50, min_eval_share 0.5"
        rf" of the \d+ leave-last-1 scores\): last 30 days",
        evaluation["reason"],
    ), evaluation["reason"]
    assert scored == evaluation["n_eval_users"] == metrics["promotion"]["n_users"] >= 50
    headline = (
        f"Model: als (holdout: last 30 days from {evaluation['cutoff']}, {scored} users scored)"
    )
    assert headline in pipeline_run["summary"]
    assert "holdout chosen by auto: last 30 days score" in pipeline_run["summary"]


def test_imputed_ratings_are_medians_of_what_was_observed_before(
    pipeline_run: dict, expected_clean: pd.DataFrame
) -> None:
    """Each missing rating: the median of the item's clean ratings strictly before the event,
    else of all clean ratings before it, else the middle of the scale (computed here row by
    row, the slow obvious way)."""
    rows = expected_clean.assign(event_at=expected_clean["event_at"].dt.tz_localize(None))
    observed = rows.dropna(subset=["rating"])
    missing = rows[rows["rating"].isna()]
    assert len(missing) >= 10
    want = []
    for row in missing.itertuples():
        before = observed[observed["event_at"] < row.event_at]
        of_item = before.loc[before["item_id"] == row.item_id, "rating"]
        value = of_item.median() if len(of_item) else before["rating"].median()
        value = 3.0 if np.isnan(value) else value  # nothing before: the middle of 1..5
        want.append((row.user_id, row.item_id, row.event_type, row.event_at, value))
    want = pd.DataFrame(want, columns=["user_id", "item_id", "event_type", "event_at", "want"])
    got = _sql(
        pipeline_run,
        "select user_id::varchar as user_id, item_id::varchar as item_id, event_type, event_at,"
        " rating from marts.interactions where is_rating_imputed",
    )
    both = want.merge(got, on=["user_id", "item_id", "event_type", "event_at"], how="outer")
    assert len(both) == len(want) == len(got)
    np.testing.assert_allclose(both["rating"], both["want"])
    assert both["want"].nunique() > 1  # not one constant: item and global medians both show


def test_dbt_unit_tests_pass_apart_from_the_build(pipeline_run: dict) -> None:
    from dbt_project import build

    build.unit_tests(pipeline_run["cfg"])  # raises DbtError when one fails
