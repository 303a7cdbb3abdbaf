"""A warehouse built by the code before the feature history (commit 070b8ff: dbt snapshots) is
migrated by the first build of today's code, its history kept, and goes on from there.

tests/fixtures/snapshots_070b8ff holds that code's snapshot tables (made by make_fixture.py there:
three builds on generated data, so that they hold closed versions with and without a successor).
A fresh home generates the same data, ingests it, gets the snapshot tables, and is built by today's
code (`recomart transform` + `recomart quality`): the history views must give every old version
with its validity and features. Then one new interaction arrives and a build adds to it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import config_for, run_stage, small_config

from feature_store import FeatureStore

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parent / "fixtures" / "snapshots_070b8ff"
SNAPSHOTS = {  # mart: (its old snapshot table, key)
    "user_features": ("user_features_snapshot", "user_id"),
    "item_features": ("item_features_snapshot", "item_id"),
}
LATE_EVENT_AT = "2026-10-15 12:00:00"


def _load_snapshots(warehouse: Path) -> None:
    """The fixture's tables into warehouse, as the old code left them (schema snapshots)."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute((FIXTURE / "schema.sql").read_text())
        for table, _ in SNAPSHOTS.values():
            con.execute(
                f"copy snapshots.{table} from '{FIXTURE / f'{table}.csv'}' (header, delimiter ',')"
            )


def _tables(warehouse: Path) -> dict[str, pd.DataFrame]:
    """The snapshots (validity as UTC timestamps), the versions, the history views and the marts
    of the feature sets, keyed "<schema>.<table>", sorted by key and time."""
    frames = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        for mart, (snapshot, key) in SNAPSHOTS.items():
            frames[f"snapshots.{snapshot}"] = con.sql(
                "select * replace (cast(dbt_valid_from as timestamp) as dbt_valid_from,"
                f" cast(dbt_valid_to as timestamp) as dbt_valid_to) from snapshots.{snapshot}"
                f" order by {key}, dbt_valid_from"
            ).df()
            for name in (f"history.{mart}_versions", f"history.{mart}_history"):
                frames[name] = con.sql(f"select * from {name} order by {key}, valid_from").df()
            frames[f"marts.{mart}"] = con.sql(f"select * from marts.{mart} order by {key}").df()
    return frames


def _build(home: Path, config_file: Path) -> None:
    run_stage(home, config_file, "transform")
    run_stage(home, config_file, "quality")


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    made = json.loads((FIXTURE / "build.json").read_text())
    home = tmp_path_factory.mktemp("history_migration")
    cfg_file = small_config(home, **made["sizes"])
    cfg = config_for(home, cfg_file)
    run_stage(home, cfg_file, "generate")
    run_stage(home, cfg_file, "ingest")
    _load_snapshots(cfg.paths.warehouse)

    started = _utc_now()
    _build(home, cfg_file)  # the first build of today's code: the migration
    migrated = _tables(cfg.paths.warehouse)
    manifest = json.loads((cfg.paths.dbt_target / "manifest.json").read_text())

    # a new interaction of the first user, then a build on top
    user_id = str(migrated["marts.user_features"]["user_id"].iloc[0])
    item_id = str(migrated["marts.item_features"]["item_id"].iloc[0])
    late_file = Path(cfg.paths.interactions_glob).parent / "late_events.csv"
    late_file.write_text(
        "user_id,item_id,rating,timestamp,event_type\n"
        f"{user_id},{item_id},5,{LATE_EVENT_AT},purchase\n"
    )
    run_stage(home, cfg_file, "ingest", "--source", "interactions")
    between = _utc_now()
    _build(home, cfg_file)
    return {
        "cfg": cfg,
        "made": made,
        "started": started,
        "between": between,
        "user_id": user_id,
        "migrated": migrated,
        "next": _tables(cfg.paths.warehouse),
        "manifest": manifest,
    }


def _untracked(manifest: dict, mart: str) -> list[str]:
    return manifest["nodes"][f"model.recomart.{mart}_versions"]["config"]["meta"][
        "untracked_columns"
    ]


def _same_values(left: pd.DataFrame, right: pd.DataFrame) -> pd.Series:
    """Row by row (same index, same columns): every value equal, nulls equal to nulls."""
    return ((left == right) | (left.isna() & right.isna())).all(axis=1)


def test_the_fixture_holds_closed_versions_with_and_without_a_successor(migrated: dict) -> None:
    old = migrated["migrated"]["snapshots.user_features_snapshot"]
    assert {t: len(migrated["migrated"][f"snapshots.{t}"]) for t, _ in SNAPSHOTS.values()} == (
        migrated["made"]["rows"]
    )
    closed = old[old["dbt_valid_to"].notna()]
    successors = old.merge(
        closed[["user_id", "dbt_valid_to"]],
        left_on=["user_id", "dbt_valid_from"],
        right_on=["user_id", "dbt_valid_to"],
    )
    assert 0 < len(successors) < len(closed)  # some were replaced, some left user_features


def test_the_first_build_keeps_every_old_version(migrated: dict) -> None:
    tables, started = migrated["migrated"], pd.Timestamp(migrated["started"])
    for mart, (snapshot, key) in SNAPSHOTS.items():
        old = tables[f"snapshots.{snapshot}"]
        view = tables[f"history.{mart}_history"]
        columns = [c for c in tables[f"marts.{mart}"].columns if c in old.columns]
        found = old.merge(
            view, left_on=[key, "dbt_valid_from"], right_on=[key, "valid_from"], how="left",
            suffixes=("_old", ""), indicator=True,
        )  # fmt: skip
        assert (found["_merge"] == "both").all(), mart  # every old version is a version
        assert len(view[view["valid_from"] < started]) == len(old)  # and nothing else before
        # with the features it had
        features = [c for c in columns if c != key]
        theirs = found[[f"{c}_old" for c in features]].set_axis(features, axis=1)
        assert _same_values(found[features], theirs).all(), mart
        # closed when the snapshot closed it (replaced, or its key left the mart)
        closed = found[found["dbt_valid_to"].notna()]
        assert (closed["valid_to"] == closed["dbt_valid_to"]).all(), mart

        # a version the snapshot left open stays open unless the mart differs from it now
        tracked = [c for c in features if c not in _untracked(migrated["manifest"], mart)]
        mart_rows = tables[f"marts.{mart}"].set_index(key)
        open_ = found[found["dbt_valid_to"].isna()].set_index(key)
        common = open_.index.intersection(mart_rows.index)
        unchanged = _same_values(open_.loc[common, tracked], mart_rows.loc[common, tracked])
        assert unchanged.sum() > 0, mart  # the same data again: most versions stay current
        assert open_.loc[unchanged[unchanged].index, "valid_to"].isna().all(), mart
        moved_on = open_.drop(unchanged[unchanged].index)
        assert (moved_on["valid_to"] > started).all(), mart


def test_an_old_version_closed_with_no_successor_becomes_a_tombstone(migrated: dict) -> None:
    tables, started = migrated["migrated"], pd.Timestamp(migrated["started"])
    old = tables["snapshots.user_features_snapshot"]
    versions = tables["history.user_features_versions"]
    closed = old[old["dbt_valid_to"].notna()]
    successors = old[["user_id", "dbt_valid_from"]].rename(
        columns={"dbt_valid_from": "dbt_valid_to"}
    )
    lone = closed.merge(successors, how="left", indicator=True)
    lone = lone[lone["_merge"] == "left_only"]
    tombstones = versions[versions["is_deleted"] & (versions["valid_from"] < started)]
    assert sorted(zip(tombstones["user_id"], tombstones["valid_from"], strict=True)) == sorted(
        zip(lone["user_id"], lone["dbt_valid_to"], strict=True)
    )
    assert tombstones["row_hash"].isna().all() and tombstones["interaction_count"].isna().all()
    assert len(versions[versions["valid_from"] < started]) == len(old) + len(lone)


def test_the_old_history_reads_as_of_a_past_time(migrated: dict) -> None:
    store = FeatureStore(migrated["cfg"])
    for mart, (snapshot, key) in SNAPSHOTS.items():
        old = migrated["migrated"][f"snapshots.{snapshot}"]
        second = sorted(old["dbt_valid_from"].unique())[1]  # the old build 2
        at = second + pd.Timedelta(seconds=1)
        then = old[
            (old["dbt_valid_from"] <= at)
            & (old["dbt_valid_to"].isna() | (at < old["dbt_valid_to"]))
        ]
        got = store.get_feature(mart, as_of=at.to_pydatetime())
        columns = list(got.columns)
        pd.testing.assert_frame_equal(
            got, then[columns].sort_values(key).reset_index(drop=True), check_dtype=False, obj=mart
        )


def test_the_next_build_adds_versions_on_top(migrated: dict) -> None:
    before, after = migrated["migrated"], migrated["next"]
    between = pd.Timestamp(migrated["between"])
    for mart in SNAPSHOTS:
        versions = after[f"history.{mart}_versions"]
        kept = versions[versions["valid_from"] < between].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, before[f"history.{mart}_versions"], obj=mart)
        assert (versions["valid_from"] > between).any(), mart  # the new event changed both
    users = after["history.user_features_history"]
    mine = users[users["user_id"].astype(str) == migrated["user_id"]]
    current, previous = mine.iloc[-1], mine.iloc[-2]
    assert current["is_current"] and current["valid_from"] > between
    assert current["interaction_count"] == previous["interaction_count"] + 1
    assert previous["valid_to"] == current["valid_from"]


def test_the_snapshot_tables_are_left_as_they_were(migrated: dict) -> None:
    for snapshot, _ in SNAPSHOTS.values():
        name = f"snapshots.{snapshot}"
        pd.testing.assert_frame_equal(migrated["next"][name], migrated["migrated"][name])
        assert len(migrated["next"][name]) == migrated["made"]["rows"][snapshot]
