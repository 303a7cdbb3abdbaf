"""The feature store API on the warehouse and dbt target that the end-to-end run built.

Values are checked against the marts read directly, or recomputed here with pandas from
marts.interactions, independently of the SQL and of the store's own joins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import config_for, run_stage, with_code_under_test

from feature_store import FeatureStore, FeatureStoreError
from recomart_core import config
from recomart_core.warehouse import candidate_path

pytestmark = pytest.mark.e2e

# the marts' contracts declare portable type names (the same YAML on DuckDB and Spark): DuckDB's
# name of `string` is VARCHAR; the others are the same on both
DUCKDB_TYPE = {"STRING": "VARCHAR"}
FEATURE_SETS = {
    "user_features": ("user", ("user_id",)),
    "item_features": ("item", ("item_id",)),
    "user_item_features": ("user_item", ("user_id", "item_id")),
}


def _sql(run: dict, query: str) -> pd.DataFrame:
    with duckdb.connect(str(run["cfg"].paths.warehouse), read_only=True) as con:
        return con.sql(query).df()


@pytest.fixture(scope="module")
def store(pipeline_run: dict) -> FeatureStore:
    return FeatureStore(pipeline_run["cfg"])


def test_list_features_describes_the_marts_from_the_manifest(
    pipeline_run: dict, store: FeatureStore
) -> None:
    listed = {f.name: f for f in store.list_features()}
    assert set(listed) == set(FEATURE_SETS)
    for name, (entity, keys) in FEATURE_SETS.items():
        feature_set = listed[name]
        assert (feature_set.entity, feature_set.join_keys) == (entity, keys)
        assert feature_set.source == "dbt" and feature_set.relation == f"marts.{name}"
        assert feature_set.description.startswith("One row per")
        assert feature_set.owner == "data-engineering" and "features" in feature_set.tags
        assert all(c.description.strip() for c in feature_set.columns), name
        types = _sql(
            pipeline_run,
            "select column_name, data_type from information_schema.columns"
            f" where table_schema = 'marts' and table_name = '{name}' order by ordinal_position",
        )
        declared = [(c.name, c.data_type.upper()) for c in feature_set.columns]
        assert [(c, DUCKDB_TYPE.get(t, t)) for c, t in declared] == list(
            types.itertuples(index=False, name=None)
        )
        assert "interactions" in feature_set.upstream
        assert set(feature_set.sources) == {"raw_interactions.interactions", "raw_catalog.products"}
        assert "feature_store" in feature_set.exposures
    assert listed["user_features"].history == "history.user_features_history"
    assert listed["item_features"].history == "history.item_features_history"
    assert listed["user_item_features"].history is None
    assert "recommender_training" in listed["item_features"].exposures
    assert "recommendation_api" in listed["item_features"].exposures


def test_get_feature_returns_the_current_mart(pipeline_run: dict, store: FeatureStore) -> None:
    for name, (_, keys) in FEATURE_SETS.items():
        expected = _sql(pipeline_run, f"select * from marts.{name}")
        expected = expected.sort_values(list(keys)).reset_index(drop=True)
        pd.testing.assert_frame_equal(store.get_feature(name), expected, obj=name)
    one = store.get_feature("item_features.popularity_score")
    assert list(one.columns) == ["item_id", "popularity_score"]
    assert store.get_feature("user_features", version="current").shape[0] > 0


def test_user_item_features_match_a_pandas_recomputation(pipeline_run: dict) -> None:
    """The formulas of the new mart, recomputed from marts.interactions on the real data."""
    rows = _sql(pipeline_run, "select * from marts.interactions")
    mart = _sql(pipeline_run, "select * from marts.user_item_features").set_index(
        ["user_id", "item_id"]
    )
    observed = rows[~rows["is_rating_imputed"]]
    user_mean = observed.groupby("user_id")["rating"].mean()
    item_mean = observed.groupby("item_id")["rating"].mean()
    pair_mean = observed.groupby(["user_id", "item_id"])["rating"].mean()
    user_total = rows.groupby("user_id").size()
    category_share = rows.groupby("category").size() / len(rows)
    assert len(mart) == len(rows.groupby(["user_id", "item_id"]))
    busiest = rows.groupby(["user_id", "item_id"]).size().sort_values(ascending=False)
    for user_id, item_id in busiest.index[:25]:
        got = mart.loc[(user_id, item_id)]
        mine = rows[(rows["user_id"] == user_id) & (rows["item_id"] == item_id)]
        users = rows[rows["user_id"] == user_id]
        assert got["interaction_count"] == len(mine)
        if (user_id, item_id) in pair_mean.index:
            mean = pair_mean[(user_id, item_id)]
            assert got["rating_minus_user_mean"] == pytest.approx(
                mean - user_mean[user_id], abs=1e-6
            )
            assert got["rating_minus_item_mean"] == pytest.approx(
                mean - item_mean[item_id], abs=1e-6
            )
        hours = mine["event_hour"].value_counts()
        assert got["preferred_hour"] == min(hours[hours == hours.max()].index)
        share = (users["event_hour"] == got["preferred_hour"]).mean()
        assert got["preferred_hour_share"] == pytest.approx(share, abs=1e-6)
        days = mine["event_day_of_week"].value_counts()
        assert got["preferred_day_of_week"] == min(days[days == days.max()].index)
        if pd.isna(got["category"]):
            assert got["category_share"] == 0 and pd.isna(got["category_affinity"])
            continue
        in_category = (users["category"] == got["category"]).sum() / user_total[user_id]
        assert got["category_share"] == pytest.approx(in_category, abs=1e-6)
        assert got["category_affinity"] == pytest.approx(
            in_category / category_share[got["category"]], abs=1e-6
        )


def test_feature_view_joins_each_set_on_its_keys(pipeline_run: dict, store: FeatureStore) -> None:
    view = store.create_feature_view(
        ["user_item_features.category_affinity", "user_features", "item_features.popularity_score"],
        join_key=["user_id", "item_id"],
    )
    pairs = _sql(
        pipeline_run, "select user_id, item_id, category_affinity from marts.user_item_features"
    )
    users = _sql(pipeline_run, "select * from marts.user_features").set_index("user_id")
    items = _sql(pipeline_run, "select * from marts.item_features").set_index("item_id")
    assert len(view) == len(pairs)
    assert not view.duplicated(["user_id", "item_id"]).any()
    assert "user_features__favourite_category" in view.columns
    sample = view.sample(200, random_state=7)
    for row in sample.itertuples(index=False):
        assert row.user_features__avg_rating == pytest.approx(
            users.loc[row.user_id, "avg_rating"], nan_ok=True
        )
        assert row.user_features__interaction_count == users.loc[row.user_id, "interaction_count"]
        assert row.item_features__popularity_score == items.loc[row.item_id, "popularity_score"]
    expected = pairs.sort_values(["user_id", "item_id"]).reset_index(drop=True)
    assert view["user_item_features__category_affinity"].equals(expected["category_affinity"])

    # inference: the rows are the caller's, in its order (ids as the shop's text); an unknown
    # user gets nulls
    entity = pd.DataFrame({"user_id": [str(users.index[3]), "no-such-user", str(users.index[0])]})
    served = store.create_feature_view(["user_features.avg_rating"], "user_id", entity_df=entity)
    assert served["user_id"].tolist() == entity["user_id"].tolist()
    assert served.loc[0, "user_features__avg_rating"] == pytest.approx(
        users.iloc[3]["avg_rating"], nan_ok=True
    )
    assert pd.isna(served.loc[1, "user_features__avg_rating"])


def test_varchar_ids_are_read_and_joined_as_text(varchar_run: dict, store: FeatureStore) -> None:
    """The marts with VARCHAR ids (as dbt builds them for the shop's ids): the same features,
    keyed by the ids' text; entity values are strings, integers match their decimal text."""
    text = FeatureStore(warehouse=varchar_run["cfg"].paths.warehouse,
                        dbt_target=varchar_run["dbt_target"])  # fmt: skip
    for name, (_, keys) in FEATURE_SETS.items():
        got = text.get_feature(name)
        assert all(pd.api.types.is_string_dtype(got[k]) for k in keys), name
        expected = store.get_feature(name)
        expected = expected.assign(**{k: expected[k].astype(str) for k in keys})
        expected = expected.sort_values(list(keys)).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=name)
    users = text.get_feature("user_features").set_index("user_id")
    some = users.index[:2].tolist()
    entity = pd.DataFrame({"user_id": [some[1], "0" + some[0], some[0]]})  # "07" is not "7"
    served = text.create_feature_view(["user_features.avg_rating"], "user_id", entity_df=entity)
    assert served["user_id"].tolist() == entity["user_id"].tolist()
    assert served["user_features__avg_rating"].tolist()[::2] == pytest.approx(
        users.loc[[some[1], some[0]], "avg_rating"].tolist(), nan_ok=True
    )
    assert pd.isna(served.loc[1, "user_features__avg_rating"])
    as_int = pd.DataFrame({"user_id": [int(some[0])]})
    by_int = text.create_feature_view(["user_features.avg_rating"], "user_id", entity_df=as_int)
    assert by_int.loc[0, "user_features__avg_rating"] == pytest.approx(
        users.loc[some[0], "avg_rating"], nan_ok=True
    )
    pairs = text.create_feature_view(
        ["user_item_features.category_affinity", "item_features.popularity_score"],
        ["user_id", "item_id"],
    )
    assert len(pairs) == len(text.get_feature("user_item_features"))
    assert pairs["item_features__popularity_score"].notna().all()


def test_lineage_reaches_the_raw_sources_and_their_loads(
    pipeline_run: dict, store: FeatureStore
) -> None:
    lineage = store.lineage("user_item_features")
    names = [n["name"] for n in lineage["nodes"]]
    for node in ("interactions", "int_interactions_validated", "stg_interactions__events"):
        assert node in names
    assert ["raw_interactions.interactions", "stg_interactions__events"] in lineage["edges"]
    assert ["interactions", "user_item_features"] in lineage["edges"]
    assert lineage["history"] is None  # no history kept for pairs
    assert store.lineage("user_features")["history"] == "history.user_features_history"
    for source in ("raw_interactions.interactions", "raw_catalog.products"):
        load_ids = _sql(pipeline_run, f"select distinct _dlt_load_id from {source} order by 1")[
            "_dlt_load_id"
        ].tolist()
        assert [load["load_id"] for load in lineage["loads"][source]] == load_ids
        assert all(load["status"] == 0 for load in lineage["loads"][source])


def test_unknown_and_hostile_names_are_clear_errors(
    pipeline_run: dict, store: FeatureStore
) -> None:
    with pytest.raises(FeatureStoreError, match="unknown feature set 'no_such_features'; known: "):
        store.get_feature("no_such_features")
    with pytest.raises(FeatureStoreError, match="user_features has no column 'nope'"):
        store.get_feature("user_features.nope")
    with pytest.raises(FeatureStoreError, match="invalid feature name"):
        store.get_feature("user_features; drop table marts.user_features")
    with pytest.raises(FeatureStoreError, match="invalid column name"):
        store.get_feature("user_features.avg_rating from marts.interactions --")
    with pytest.raises(FeatureStoreError, match="one version"):
        store.get_feature("user_features", version="v2")
    with pytest.raises(FeatureStoreError, match="not a subset of the join key"):
        store.create_feature_view(["user_item_features"], join_key="user_id")
    with pytest.raises(FeatureStoreError, match="pass entity_df"):
        store.create_feature_view(["user_features", "item_features"], ["user_id", "item_id"])
    with pytest.raises(FeatureStoreError, match="invalid join key"):
        store.create_feature_view(["user_features"], join_key="user_id) or (1=1")
    assert len(_sql(pipeline_run, "select * from marts.user_features")) > 0


def test_reads_leave_the_warehouse_unlocked(pipeline_run: dict, store: FeatureStore) -> None:
    store.list_features()
    store.get_feature("user_features", as_of="2100-01-01")
    store.create_feature_view(["user_features"], "user_id")
    store.lineage("item_features")
    # a read-write connection cannot open while any read-only one is open in this process
    with duckdb.connect(str(pipeline_run["cfg"].paths.warehouse)) as con:
        assert con.execute("select count(*) from marts.user_features").fetchall()[0][0] > 0


def test_docs_generate_the_lineage_to_training_and_serving(pipeline_run: dict) -> None:
    home, cfg = pipeline_run["home"], pipeline_run["cfg"]
    run_stage(home, home / "recomart.toml", "docs")
    target = cfg.paths.dbt_target
    assert (target / "index.html").exists() and (target / "catalog.json").exists()
    manifest = json.loads((target / "manifest.json").read_text())
    parents = manifest["parent_map"]

    def reaches(node: str, source: str) -> bool:
        return node == source or any(reaches(p, source) for p in parents.get(node, []))

    for exposure in ("recommender_training", "recommendation_api"):
        node = f"exposure.recomart.{exposure}"
        assert node in manifest["exposures"]
        for source in ("raw_interactions.interactions", "raw_catalog.products"):
            assert reaches(node, f"source.recomart.{source}")
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.recomart.user_item_features" in catalog["nodes"]


# ----------------------------------------------------------------- the training set, point in time
def test_training_set_holds_what_was_known_at_its_time(
    pipeline_run: dict, store: FeatureStore
) -> None:
    rows = _sql(
        pipeline_run,
        "select user_id::varchar as user_id, item_id::varchar as item_id, event_type, event_at"
        " from marts.interactions",
    )
    catalog = _sql(
        pipeline_run,
        "select item_id::varchar as item_id, title, category, price from marts.item_features",
    )
    as_of = rows["event_at"].quantile(0.5)
    known = rows[rows["event_at"] <= as_of]
    assert 0 < len(known) < len(rows)  # the cutoff leaves something out
    full, then = store.training_set(), store.training_set(as_of=as_of.isoformat())
    assert len(full.interactions) == len(rows)
    assert len(then.interactions) == len(known)
    assert then.interactions["event_at"].max() <= as_of < full.interactions["event_at"].max()

    def decoded(data) -> pd.DataFrame:
        users = dict(zip(data.user_codes.tolist(), data.user_names.tolist(), strict=True))
        items = dict(zip(data.item_codes.tolist(), data.item_names.tolist(), strict=True))
        frame = data.interactions
        return pd.DataFrame(
            {
                "user_id": frame["user_id"].map(users),
                "item_id": frame["item_id"].map(items),
                "event_type": frame["event_type"],
                "event_at": frame["event_at"],
            }
        )

    columns = ["user_id", "item_id", "event_type", "event_at"]
    for data, expected in ((full, rows), (then, known)):
        got = decoded(data).sort_values(columns).reset_index(drop=True)
        want = expected.sort_values(columns).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        # codes: positions of the ids sorted as text; users of the rows, items of rows + catalog
        assert data.user_names.tolist() == sorted(set(expected["user_id"]))
        assert data.item_names.tolist() == sorted(
            set(expected["item_id"]) | set(catalog["item_id"])
        )
        assert data.user_codes.tolist() == list(range(len(data.user_codes)))
    # item attributes: the catalog's, keyed by code; the same through item_attributes()
    names = dict(zip(then.item_codes.tolist(), then.item_names.tolist(), strict=True))
    attributes = then.items.assign(item_id=then.items["item_id"].map(names))
    want = catalog.sort_values("item_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        attributes.sort_values("item_id").reset_index(drop=True), want, check_dtype=False
    )
    pd.testing.assert_frame_equal(store.item_attributes(), want, check_dtype=False)


# ----------------------------------------------------- saving never touches the live warehouse
def _copy_home(pipeline_run: dict, tmp_path: Path) -> tuple[Path, config.Config]:
    home = tmp_path / "home"
    shutil.copytree(pipeline_run["home"], home)
    return home, config_for(home, home / "recomart.toml")


def test_saving_features_between_transform_and_quality_lets_the_gate_publish(
    pipeline_run: dict, tmp_path: Path
) -> None:
    home, cfg = _copy_home(pipeline_run, tmp_path)
    live = cfg.paths.warehouse
    run_stage(home, home / "recomart.toml", "transform")  # builds the candidate
    before = live.stat()
    fs = FeatureStore(cfg)
    users = fs.get_feature("user_features.interaction_count")
    saved = fs.save_feature(
        users.assign(score=1.0)[["user_id", "score"]], "user_scores", "v1", join_keys=["user_id"]
    )
    assert saved.relation == "feature_store.main.user_scores__v1"
    assert cfg.paths.feature_store == live.parent / "feature_store.duckdb"
    assert cfg.paths.feature_store.is_file()
    after = live.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    run_stage(home, home / "recomart.toml", "quality")  # passes and publishes (exit 0)
    assert not candidate_path(live).exists()
    with duckdb.connect(str(live), read_only=True) as con:
        schemas = con.execute("select schema_name from information_schema.schemata").fetchall()
    schemas = {schema for (schema,) in schemas}
    assert "feature_store" not in schemas and "marts" in schemas
    published = FeatureStore(cfg)
    assert (published.get_feature("user_scores")["score"] == 1.0).all()
    view = published.create_feature_view(["user_features.avg_rating", "user_scores"], "user_id")
    assert len(view) == len(users) and (view["user_scores__score"] == 1.0).all()

    # control: a write into the live warehouse at the same moment (what saving used to do)
    # makes the gate refuse to publish, so the test above could fail
    run_stage(home, home / "recomart.toml", "transform")
    with duckdb.connect(str(live)) as con:
        con.execute("create schema feature_store")
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(home / "recomart.toml")}
    proc = subprocess.run(
        [sys.executable, "-m", "recomart.cli", "quality"], env=with_code_under_test(env),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0 and "changed after the candidate" in proc.stderr
