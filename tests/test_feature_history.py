"""Point-in-time builds and feature history, on the real stages (generate, ingest, dbt, quality).

One home goes through three builds (each `recomart transform`, then `recomart quality`, which
publishes the candidate warehouse dbt built):
1. `dbt build` with as_of = AS_OF (the training cutoff);
2. one new interaction dated after the cutoff is ingested, and the same build runs again;
3. the build runs without a cutoff (as production does), so the new interaction counts.
Between the builds the marts and snapshots are read, so the tests compare what each build left.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import config_for, run_stage, small_config

from feature_store import FeatureStore, FeatureStoreError

pytestmark = pytest.mark.e2e

AS_OF = "2026-07-01T00:00:00"
LATE_EVENT_AT = "2026-08-15 12:00:00"  # after AS_OF, before the generated data ends
MARTS = {
    "interactions": ["interaction_key"],
    "rejected_interactions": ["interaction_key"],
    "user_features": ["user_id"],
    "item_features": ["item_id"],
    "user_item_features": ["user_id", "item_id"],
}
SNAPSHOTS = {"user_features_snapshot": "user_id", "item_features_snapshot": "item_id"}


def _config_with_as_of(home: Path, config_file: Path, as_of: str) -> Path:
    """A copy of the config file whose [transform] section sets the dbt var as_of."""
    text = re.sub(
        r"(?m)^\[transform\]$", f'[transform]\nas_of = "{as_of}"', config_file.read_text()
    )
    path = home / "recomart_as_of.toml"
    path.write_text(text)
    return path


def _read(warehouse: Path, schema: str, tables: dict) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            table: con.sql(f"select * from {schema}.{table}")
            .df()
            .sort_values(list(keys) if isinstance(keys, list) else [keys, "dbt_valid_from"])
            .reset_index(drop=True)
            for table, keys in tables.items()
        }


def _build(home: Path, config_file: Path) -> None:
    """dbt build into a candidate warehouse, then the quality gate that publishes it."""
    run_stage(home, config_file, "transform")
    run_stage(home, config_file, "quality")


def _by_id(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """frame indexed by its id column as text (ids are the shop's strings; BIGINT marts give
    integers, whose text is the id)."""
    return frame.set_index(frame[key].astype(str))


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("feature_history")
    cfg_file = small_config(home, n_interactions=4000)
    cutoff_file = _config_with_as_of(home, cfg_file, AS_OF)
    cfg = config_for(home, cfg_file)
    warehouse = cfg.paths.warehouse
    run_stage(home, cfg_file, "generate")
    run_stage(home, cfg_file, "ingest")

    started_1 = _utc_now()
    _build(home, cutoff_file)
    marts_1 = _read(warehouse, "marts", MARTS)
    snapshots_1 = _read(warehouse, "snapshots", SNAPSHOTS)

    # the pair with the most interactions before the cutoff gets one more, after it
    pair = marts_1["user_item_features"].sort_values(
        ["interaction_count", "user_id", "item_id"], ascending=[False, True, True]
    )
    user_id, item_id = (str(v) for v in pair.iloc[0][["user_id", "item_id"]])
    late_file = Path(cfg.paths.interactions_glob).parent / "late_events.csv"
    late_file.write_text(
        f"user_id,item_id,rating,timestamp,event_type\n{user_id},{item_id},1,{LATE_EVENT_AT},purchase\n"
    )
    run_stage(home, cfg_file, "ingest", "--source", "interactions")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        raw_late = con.execute(
            "select count(*) from raw_interactions.interactions"
            " where source_file like '%/late_events.csv'"
        ).fetchall()[0][0]
    _build(home, cutoff_file)
    marts_2 = _read(warehouse, "marts", MARTS)
    snapshots_2 = _read(warehouse, "snapshots", SNAPSHOTS)

    time.sleep(0.05)
    between = _utc_now()  # after build 2's snapshots, before build 3's
    time.sleep(0.05)
    _build(home, cfg_file)
    marts_3 = _read(warehouse, "marts", MARTS)
    snapshots_3 = _read(warehouse, "snapshots", SNAPSHOTS)
    return {
        "home": home,
        "cfg": cfg,
        "started_1": started_1,
        "between": between,
        "user_id": user_id,
        "item_id": item_id,
        "raw_late": raw_late,
        "marts": [marts_1, marts_2, marts_3],
        "snapshots": [snapshots_1, snapshots_2, snapshots_3],
    }


def test_an_event_after_the_cutoff_changes_nothing_in_the_marts(history: dict) -> None:
    before, after, uncut = history["marts"]
    assert history["raw_late"] == 1  # the late event did reach the warehouse
    for mart in MARTS:
        assert len(before[mart]) > 0, mart
        pd.testing.assert_frame_equal(after[mart], before[mart], obj=mart)
    assert (before["user_features"]["features_as_of"] == pd.Timestamp(AS_OF)).all()
    assert before["interactions"]["event_at"].max() <= pd.Timestamp(AS_OF)
    # control: without the cutoff the late event is there, so the comparison above could fail
    rows = uncut["interactions"]
    late = rows[
        (rows["event_at"] == pd.Timestamp(LATE_EVENT_AT))
        & (rows["user_id"].astype(str) == history["user_id"])
        & (rows["item_id"].astype(str) == history["item_id"])
    ]
    assert len(late) == 1


def test_snapshots_record_changed_rows_with_validity_intervals(history: dict) -> None:
    first, second, third = history["snapshots"]
    marts_1, _, marts_3 = history["marts"]
    for name, key in SNAPSHOTS.items():
        mart = name.removesuffix("_snapshot")
        # build 2 saw no new data within the cutoff: no new version, nothing closed
        pd.testing.assert_frame_equal(second[name], first[name], obj=name)
        assert first[name]["dbt_valid_to"].isna().all()
        assert len(first[name]) == len(marts_1[mart])
        # build 3: one current version per row of the mart; the replaced ones closed
        current = third[name][third[name]["dbt_valid_to"].isna()]
        closed = third[name][third[name]["dbt_valid_to"].notna()]
        assert sorted(current[key]) == sorted(marts_3[mart][key])
        assert len(closed) > 0
        assert (closed["dbt_valid_to"] > closed["dbt_valid_from"]).all()
        assert (closed["dbt_valid_to"] <= history["between"]).sum() == 0
        # validity intervals of one entity chain without gap or overlap
        for _, versions in third[name].groupby(key):
            ends = versions["dbt_valid_to"].iloc[:-1].tolist()
            starts = versions["dbt_valid_from"].iloc[1:].tolist()
            assert ends == starts

    users = third["user_features_snapshot"]
    mine = users[users["user_id"].astype(str) == history["user_id"]].reset_index(drop=True)
    assert len(mine) == 2
    old = _by_id(marts_1["user_features"], "user_id").loc[history["user_id"]]
    new = _by_id(marts_3["user_features"], "user_id").loc[history["user_id"]]
    assert mine.loc[0, "interaction_count"] == old["interaction_count"]
    assert mine.loc[1, "interaction_count"] == new["interaction_count"]
    assert new["interaction_count"] > old["interaction_count"]


def _as_of_sql(warehouse: Path, snapshot: str, at: datetime) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            f"select * exclude (dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to)"
            f" from snapshots.{snapshot}"
            " where dbt_valid_from <= ? and (dbt_valid_to is null or dbt_valid_to > ?)",
            [at, at],
        ).df()


def test_reading_the_snapshot_as_of_a_past_time_returns_the_values_then(history: dict) -> None:
    warehouse = history["cfg"].paths.warehouse
    marts_1 = history["marts"][0]
    for name, key in SNAPSHOTS.items():
        mart = name.removesuffix("_snapshot")
        then = _as_of_sql(warehouse, name, history["between"]).sort_values(key)
        pd.testing.assert_frame_equal(then.reset_index(drop=True), marts_1[mart], obj=name)
        now = _as_of_sql(warehouse, name, _utc_now()).sort_values(key).reset_index(drop=True)
        changed = now.merge(marts_1[mart], how="outer", indicator=True)
        assert (changed["_merge"] != "both").any()  # the present differs from the past
        before_any = _as_of_sql(warehouse, name, history["started_1"])
        assert before_any.empty


def test_feature_store_reads_current_and_past_values(history: dict) -> None:
    store = FeatureStore(history["cfg"])
    marts_1, _, marts_3 = history["marts"]
    between = history["between"]
    for mart in ("user_features", "item_features"):
        pd.testing.assert_frame_equal(store.get_feature(mart), marts_3[mart], obj=mart)
        then = store.get_feature(mart, as_of=between)
        pd.testing.assert_frame_equal(then, marts_1[mart], obj=mart)
        # a zoned time means the same instant
        zoned = pd.Timestamp(between).tz_localize("UTC").tz_convert("Europe/Paris").isoformat()
        assert len(store.get_feature(mart, as_of=zoned)) == len(then)
        assert store.get_feature(mart, as_of=history["started_1"]).empty

    user_id, item_id = history["user_id"], history["item_id"]
    entity = pd.DataFrame({"user_id": [user_id], "item_id": [item_id]})
    names = ["user_features.interaction_count", "item_features.interaction_count"]
    past = store.create_feature_view(names, ["user_id", "item_id"], as_of=between, entity_df=entity)
    present = store.create_feature_view(names, ["user_id", "item_id"], entity_df=entity)
    for view, marts in ((past, marts_1), (present, marts_3)):
        users = _by_id(marts["user_features"], "user_id")
        items = _by_id(marts["item_features"], "item_id")
        assert (
            view.loc[0, "user_features__interaction_count"]
            == (users.loc[user_id, "interaction_count"])
        )
        assert (
            view.loc[0, "item_features__interaction_count"]
            == (items.loc[item_id, "interaction_count"])
        )
    assert (
        present.loc[0, "user_features__interaction_count"]
        > past.loc[0, "user_features__interaction_count"]
    )
    with pytest.raises(FeatureStoreError, match="no dbt snapshot"):
        store.get_feature("user_item_features", as_of=between)


def test_saved_features_are_versioned_listed_and_point_in_time(history: dict) -> None:
    store = FeatureStore(history["cfg"])
    users = history["marts"][2]["user_features"]
    first = pd.DataFrame({"user_id": users["user_id"], "score": 1.0})
    second = first.assign(score=2.0)
    store.register_feature(
        "user_scores", "A score per user, computed in Python.", ["user_id"],
        entity="user", owner="ml", tags=["test"], upstream=["user_features"],
    )  # fmt: skip
    listed = {f.name: f for f in store.list_features()}
    assert listed["user_scores"].versions == () and listed["user_scores"].owner == "ml"

    store.save_feature(first, "user_scores", "v1")
    saved_between = _utc_now()
    time.sleep(0.01)
    store.save_feature(second, "user_scores", "v2")
    listed = {f.name: f for f in store.list_features()}
    scores = listed["user_scores"]
    assert scores.versions == ("v1", "v2")
    assert scores.join_keys == ("user_id",) and scores.upstream == ("user_features",)
    id_type = "VARCHAR" if pd.api.types.is_string_dtype(users["user_id"]) else "BIGINT"
    assert {c.name: c.data_type for c in scores.columns} == {"user_id": id_type, "score": "DOUBLE"}
    assert (store.get_feature("user_scores")["score"] == 2.0).all()
    assert (store.get_feature("user_scores", version="v1")["score"] == 1.0).all()
    assert (store.get_feature("user_scores", as_of=saved_between)["score"] == 1.0).all()
    assert len(store.get_feature("user_scores.score")) == len(users)

    view = store.create_feature_view(["user_features.avg_rating", "user_scores"], "user_id")
    assert len(view) == len(users) and (view["user_scores__score"] == 2.0).all()

    lineage = store.lineage("user_scores")
    assert ["user_features", "user_scores"] in lineage["edges"]
    assert "raw_interactions.interactions" in lineage["sources"]

    with pytest.raises(FeatureStoreError, match="immutable"):
        store.save_feature(first, "user_scores", "v1")
    with pytest.raises(FeatureStoreError, match="unknown version"):
        store.get_feature("user_scores", version="v9")
    with pytest.raises(FeatureStoreError, match="built by dbt"):
        store.register_feature("user_features", "clash", ["user_id"])
    with pytest.raises(FeatureStoreError, match="unique"):
        store.save_feature(pd.concat([first, first]), "user_scores", "v3")
    with pytest.raises(FeatureStoreError, match="invalid"):
        store.save_feature(first, "x; drop table marts.user_features", "v1", join_keys=["user_id"])
    with pytest.raises(FeatureStoreError, match="invalid version"):
        store.save_feature(first, "user_scores", "v4'); drop table marts.user_features; --")
    with pytest.raises(FeatureStoreError, match="invalid column"):
        store.save_feature(first.rename(columns={"score": 'a" int); --'}), "user_scores", "v5")
    assert len(store.get_feature("user_features")) == len(users)  # nothing was dropped
