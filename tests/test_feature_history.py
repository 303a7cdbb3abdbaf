"""Point-in-time builds and feature history, on the real stages (generate, ingest, dbt, quality).

One home goes through three builds (each `recomart transform`, then `recomart quality`, which
publishes the candidate warehouse dbt built):
1. `dbt build` with as_of = AS_OF (the training cutoff);
2. one new interaction dated after the cutoff is ingested, and the same build runs again;
3. the build runs without a cutoff (as production does), so the new interaction counts.
Between the builds the marts and the history (history.<mart>_versions, the append-only table, and
history.<mart>_history, the view) are read, so the tests compare what each build left.

Then a copy of that home replays exact edits of the marts, each followed by a dbt build of the
history alone (`--select tag:history`) at a set time (var history_as_of, REPLAY): a change of the
untracked columns only, a change of a tracked one, a user who leaves and comes back, a new mart
column, and `--full-refresh`.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import config_for, run_stage, small_config

from dbt_project import build
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
HISTORY = {"user_features": "user_id", "item_features": "item_id"}  # mart: key
# the replayed builds, in order, at these times (later than any build of the pipeline)
REPLAY = {
    "untracked": "2100-01-01 00:00:00",
    "tracked": "2100-01-02 00:00:00",
    "deleted": "2100-01-03 00:00:00",
    "back": "2100-01-04 00:00:00",
    "new_column": "2100-01-05 00:00:00",
    "full_refresh": "2100-01-06 00:00:00",
}


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
            .sort_values(list(keys) if isinstance(keys, list) else [keys, "valid_from"])
            .reset_index(drop=True)
            for table, keys in tables.items()
        }


def _read_history(warehouse: Path) -> dict[str, dict[str, pd.DataFrame]]:
    """{mart: {"versions": its versions table, "history": its history view}}, sorted by key and
    valid_from."""
    versions = _read(warehouse, "history", {f"{m}_versions": k for m, k in HISTORY.items()})
    views = _read(warehouse, "history", {f"{m}_history": k for m, k in HISTORY.items()})
    return {
        mart: {"versions": versions[f"{mart}_versions"], "history": views[f"{mart}_history"]}
        for mart in HISTORY
    }


def _build(home: Path, config_file: Path) -> None:
    """dbt build into a candidate warehouse, then the quality gate that publishes it."""
    run_stage(home, config_file, "transform")
    run_stage(home, config_file, "quality")


def _by_id(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """frame indexed by its id column as text (ids are the shop's strings; BIGINT marts give
    integers, whose text is the id)."""
    return frame.set_index(frame[key].astype(str))


def _of(frame: pd.DataFrame, key: str, value: str) -> pd.DataFrame:
    """The rows of one entity, in order."""
    return frame[frame[key].astype(str) == value].reset_index(drop=True)


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
    history_1 = _read_history(warehouse)

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
    history_2 = _read_history(warehouse)

    time.sleep(0.05)
    between = _utc_now()  # after build 2, before build 3
    time.sleep(0.05)
    _build(home, cfg_file)
    marts_3 = _read(warehouse, "marts", MARTS)
    history_3 = _read_history(warehouse)
    return {
        "home": home,
        "cfg": cfg,
        "started_1": started_1,
        "between": between,
        "user_id": user_id,
        "item_id": item_id,
        "raw_late": raw_late,
        "marts": [marts_1, marts_2, marts_3],
        "history": [history_1, history_2, history_3],
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


def test_history_records_changed_rows_with_validity_intervals(history: dict) -> None:
    first, second, third = history["history"]
    marts_1, _, marts_3 = history["marts"]
    between = pd.Timestamp(history["between"])
    for mart, key in HISTORY.items():
        # build 1: one current version per row of the mart, with its values
        view_1 = first[mart]["history"]
        assert view_1["is_current"].all() and view_1["valid_to"].isna().all()
        pd.testing.assert_frame_equal(
            view_1[list(marts_1[mart].columns)], marts_1[mart], check_dtype=False, obj=mart
        )
        # build 2 saw no new data within the cutoff: no row appended, nothing closed
        pd.testing.assert_frame_equal(second[mart]["versions"], first[mart]["versions"], obj=mart)

        # build 3 appended: the rows of builds 1-2 are still there, unchanged
        versions_1, versions_3 = first[mart]["versions"], third[mart]["versions"]
        kept = versions_3[versions_3["valid_from"] < between].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, versions_1, obj=mart)
        added = versions_3[versions_3["valid_from"] > between]
        assert added["valid_from"].nunique() == 1 and not added["is_deleted"].any()

        # one current version per row of the mart; the replaced ones closed by build 3
        view = third[mart]["history"]
        current, closed = view[view["is_current"]], view[~view["is_current"]]
        assert sorted(current[key]) == sorted(marts_3[mart][key])
        assert len(closed) > 0
        assert (closed["valid_to"] == added["valid_from"].iloc[0]).all()
        new_keys = len(marts_3[mart]) - len(marts_1[mart])  # first seen in build 3
        assert len(added) == len(closed) + new_keys
        # validity intervals of one entity chain without gap or overlap
        for _, versions in view.groupby(key):
            assert (
                versions["valid_to"].iloc[:-1].tolist() == versions["valid_from"].iloc[1:].tolist()
            )

    users = third["user_features"]["history"]
    mine = _of(users, "user_id", history["user_id"])
    assert len(mine) == 2
    old = _by_id(marts_1["user_features"], "user_id").loc[history["user_id"]]
    new = _by_id(marts_3["user_features"], "user_id").loc[history["user_id"]]
    assert mine.loc[0, "interaction_count"] == old["interaction_count"]
    assert mine.loc[1, "interaction_count"] == new["interaction_count"]
    assert new["interaction_count"] > old["interaction_count"]


def _as_of_sql(warehouse: Path, mart: str, columns: list[str], at: datetime) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            f"select {', '.join(columns)} from history.{mart}_history"
            " where valid_from <= ? and (valid_to is null or ? < valid_to)",
            [at, at],
        ).df()


def test_reading_the_history_as_of_a_past_time_returns_the_values_then(history: dict) -> None:
    warehouse = history["cfg"].paths.warehouse
    marts_1 = history["marts"][0]
    for mart, key in HISTORY.items():
        columns = list(marts_1[mart].columns)
        then = _as_of_sql(warehouse, mart, columns, history["between"]).sort_values(key)
        pd.testing.assert_frame_equal(then.reset_index(drop=True), marts_1[mart], obj=mart)
        now = _as_of_sql(warehouse, mart, columns, _utc_now()).sort_values(key)
        changed = now.reset_index(drop=True).merge(marts_1[mart], how="outer", indicator=True)
        assert (changed["_merge"] != "both").any()  # the present differs from the past
        assert _as_of_sql(warehouse, mart, columns, history["started_1"]).empty


def test_feature_store_reads_current_and_past_values(history: dict) -> None:
    store = FeatureStore(history["cfg"])
    marts_1, _, marts_3 = history["marts"]
    between = history["between"]
    for mart in HISTORY:
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
    with pytest.raises(FeatureStoreError, match="user_item_features has no history"):
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


# ------------------------------------------------ the history, edit by edit, at times we choose
def _execute(warehouse: Path, *statements: tuple[str, list]) -> None:
    with duckdb.connect(str(warehouse)) as con:
        for sql, params in statements:
            con.execute(sql, params)


@pytest.fixture(scope="module")
def replayed(history: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the home after build 3; each step edits its marts, then builds the history
    alone at REPLAY[step]. {"cfg", "user", "gone", "item", "states": {step: _read_history}}."""
    home = tmp_path_factory.mktemp("history_replay") / "home"
    shutil.copytree(history["home"], home)
    cfg = config_for(home, home / "recomart.toml")
    warehouse = cfg.paths.warehouse
    marts = history["marts"][2]
    users = marts["user_features"]["user_id"].astype(str).tolist()
    user, gone = history["user_id"], next(u for u in users if u != history["user_id"])
    priced = marts["item_features"].dropna(subset=["price"])
    item = str(priced["item_id"].iloc[0])

    def build_history(step: str, *flags: str) -> None:
        build.run_dbt(
            ["build", "--select", "tag:history", *flags],
            cfg,
            variables={"history_as_of": REPLAY[step]},
        )
        states[step] = _read_history(warehouse)

    states = {"start": _read_history(warehouse)}
    _execute(
        warehouse,
        ("update marts.user_features set features_as_of = features_as_of + interval 7 day,"
         " days_since_last_interaction = days_since_last_interaction + 7", []),
        ("update marts.item_features set features_as_of = features_as_of + interval 7 day,"
         " popularity_score = popularity_score / 2", []),
    )  # fmt: skip
    build_history("untracked")
    _execute(
        warehouse,
        ("update marts.user_features set interaction_count = interaction_count + 1"
         " where user_id = ?", [user]),
        ("update marts.item_features set price = price + 1 where item_id = ?", [item]),
    )  # fmt: skip
    build_history("tracked")
    _execute(
        warehouse,
        ("create table main.gone_user as select * from marts.user_features where user_id = ?",
         [gone]),
        ("delete from marts.user_features where user_id = ?", [gone]),
    )  # fmt: skip
    build_history("deleted")
    _execute(
        warehouse,
        ("insert into marts.user_features select * from main.gone_user", []),
        ("drop table main.gone_user", []),
    )
    build_history("back")
    _execute(
        warehouse,
        ("alter table marts.user_features add column loyalty_tier varchar default 'gold'", []),
    )
    build_history("new_column")
    build_history("full_refresh", "--full-refresh")
    return {"cfg": cfg, "user": user, "gone": gone, "item": item, "states": states}


def _appended(replayed: dict, step: str, mart: str) -> pd.DataFrame:
    """The versions rows that the build of `step` appended (the steps run in REPLAY's order),
    after checking that it left every earlier row as it was."""
    steps = ["start", *REPLAY]
    before = replayed["states"][steps[steps.index(step) - 1]][mart]["versions"]
    after = replayed["states"][step][mart]["versions"]
    at = pd.Timestamp(REPLAY[step])
    kept = after.loc[after["valid_from"] < at, list(before.columns)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before, check_dtype=False, obj=f"{mart} before {step}")
    return after[after["valid_from"] == at].reset_index(drop=True)


def test_a_change_of_untracked_columns_only_adds_no_version(replayed: dict) -> None:
    for mart in HISTORY:
        assert _appended(replayed, "untracked", mart).empty, mart
        pd.testing.assert_frame_equal(
            replayed["states"]["untracked"][mart]["history"],
            replayed["states"]["start"][mart]["history"],
        )


def test_a_tracked_change_adds_one_version_of_that_entity_only(replayed: dict) -> None:
    before = replayed["states"]["untracked"]
    after = replayed["states"]["tracked"]
    at = pd.Timestamp(REPLAY["tracked"])
    for mart, key, entity, column, step in (
        ("user_features", "user_id", replayed["user"], "interaction_count", 1),
        ("item_features", "item_id", replayed["item"], "price", 1.0),
    ):
        added = _appended(replayed, "tracked", mart)
        assert added[key].astype(str).tolist() == [entity]
        previous = _of(before[mart]["history"], key, entity).iloc[-1]
        assert added.loc[0, column] == previous[column] + step
        assert not added.loc[0, "is_deleted"] and added.loc[0, "row_hash"] != previous["row_hash"]
        versions = _of(after[mart]["history"], key, entity)
        assert versions["valid_to"].iloc[-2] == at and versions["valid_from"].iloc[-1] == at
        assert versions["is_current"].tolist()[-2:] == [False, True]


def test_a_disappearance_is_a_tombstone_and_a_return_a_new_version(replayed: dict) -> None:
    gone, states = replayed["gone"], replayed["states"]
    deleted, back = pd.Timestamp(REPLAY["deleted"]), pd.Timestamp(REPLAY["back"])
    tombstone = _appended(replayed, "deleted", "user_features")
    assert tombstone["user_id"].astype(str).tolist() == [gone]
    assert tombstone.loc[0, "is_deleted"] and pd.isna(tombstone.loc[0, "row_hash"])
    assert tombstone.drop(columns=["user_id", "is_deleted", "valid_from"]).isna().all(axis=None)
    assert _appended(replayed, "deleted", "item_features").empty
    view = _of(states["deleted"]["user_features"]["history"], "user_id", gone)
    assert view["valid_to"].iloc[-1] == deleted and not view["is_current"].any()

    returned = _appended(replayed, "back", "user_features")
    assert returned["user_id"].astype(str).tolist() == [gone]
    assert not returned.loc[0, "is_deleted"]
    view = _of(states["back"]["user_features"]["history"], "user_id", gone)
    before_leaving = view.iloc[-2]
    assert returned.loc[0, "row_hash"] == before_leaving["row_hash"]  # the same values, again
    assert before_leaving["valid_to"] == deleted  # a gap from `deleted` to `back`
    assert view["valid_from"].iloc[-1] == back and view["is_current"].iloc[-1]


def test_a_new_mart_column_is_versioned_without_being_listed(replayed: dict) -> None:
    states = replayed["states"]
    added = _appended(replayed, "new_column", "user_features")
    assert len(added) == len(states["back"]["user_features"]["history"].query("is_current"))
    assert (added["loyalty_tier"] == "gold").all()
    versions = states["new_column"]["user_features"]["versions"]
    assert versions.loc[versions["valid_from"] < pd.Timestamp(REPLAY["new_column"]),
                        "loyalty_tier"].isna().all()  # fmt: skip
    view = states["new_column"]["user_features"]["history"]
    assert (view.loc[view["is_current"], "loyalty_tier"] == "gold").all()
    assert _appended(replayed, "new_column", "item_features").empty


def test_full_refresh_keeps_the_history(replayed: dict) -> None:
    before, after = replayed["states"]["new_column"], replayed["states"]["full_refresh"]
    for mart in HISTORY:
        assert (~before[mart]["history"]["is_current"]).sum() > 0  # there is a past to lose
        pd.testing.assert_frame_equal(after[mart]["versions"], before[mart]["versions"])
        pd.testing.assert_frame_equal(after[mart]["history"], before[mart]["history"])


def test_point_in_time_reads_between_two_builds_return_the_older_version(replayed: dict) -> None:
    store = FeatureStore(replayed["cfg"])
    user, gone, item = replayed["user"], replayed["gone"], replayed["item"]

    def users_at(at: str) -> pd.DataFrame:
        return _by_id(store.get_feature("user_features", as_of=at), "user_id")

    def price_at(at: str) -> float:
        return _by_id(store.get_feature("item_features", as_of=at), "item_id").loc[item, "price"]

    start = _by_id(replayed["states"]["start"]["user_features"]["history"].query("is_current"),
                   "user_id")  # fmt: skip
    count = start.loc[user, "interaction_count"]
    assert users_at("2100-01-01T12:00:00").loc[user, "interaction_count"] == count
    assert users_at("2100-01-02T00:00:00").loc[user, "interaction_count"] == count + 1
    assert price_at("2100-01-02T12:00:00") == price_at("2100-01-01T12:00:00") + 1
    assert gone in users_at("2100-01-02T12:00:00").index
    assert gone not in users_at("2100-01-03T12:00:00").index
    assert gone in users_at("2100-01-04T12:00:00").index


def test_a_build_earlier_than_the_recorded_history_fails(
    replayed: dict, caplog: pytest.LogCaptureFixture
) -> None:
    before = _read_history(replayed["cfg"].paths.warehouse)
    with caplog.at_level(logging.INFO, logger="transformation"), pytest.raises(build.DbtError):
        build.run_dbt(
            ["build", "--select", "tag:history"], replayed["cfg"],
            variables={"history_as_of": "2099-12-31T00:00:00"},
        )  # fmt: skip
    assert "valid_from must be after every recorded time" in caplog.text
    after = _read_history(replayed["cfg"].paths.warehouse)
    for mart in HISTORY:
        pd.testing.assert_frame_equal(after[mart]["versions"], before[mart]["versions"])


def test_the_history_sql_is_portable(replayed: dict) -> None:
    """The compiled SQL of the history models uses none of DuckDB's own syntax and never the
    database's clock (dbt-spark on Parquet must run it unchanged)."""
    compiled = replayed["cfg"].paths.dbt_target / "compiled" / "recomart" / "models" / "history"
    models = (f for f in compiled.rglob("*.sql") if not f.parent.name.endswith(".yml"))  # no tests
    files = sorted(models, key=lambda f: f.stem)
    assert [f.stem for f in files] == sorted(
        [f"{m}_{kind}" for m in HISTORY for kind in ("history", "versions")]
    )
    banned = re.compile(r"\bqualify\b|\bexclude\s*\(|::|current_timestamp|\bnow\s*\(", re.I)
    for path in files:
        sql = path.read_text()
        assert not banned.search(sql), (path.name, banned.search(sql))
        if path.stem.endswith("_versions"):  # the build's time, as a literal
            assert re.search(r"cast\('2100-01-0\d \d\d:\d\d:\d\d\.\d{6}' as timestamp\)", sql)
