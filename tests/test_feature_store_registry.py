"""The feature store's own registry (feature_store.registry), without a pipeline run: a
store over an empty warehouse path, so only registered and saved sets exist. Regressions of the
hostile-input review: metadata-only rows, immutable versions, names that end in a newline and
versions that map to one table. And the dbt half on a hand-written manifest: where a set's
history is."""

import json
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from feature_store import FeatureStore
from feature_store.errors import FeatureStoreError
from feature_store.retrieval import relation_for

FRAME = pd.DataFrame({"user_id": ["a", "b"], "score": [1.0, 2.0]})


@pytest.fixture
def store(tmp_path) -> FeatureStore:
    return FeatureStore(warehouse=tmp_path / "warehouse.duckdb")


@pytest.mark.parametrize("order", ["register first", "save first"])
def test_a_metadata_only_registration_beside_a_saved_version_breaks_nothing(store, order) -> None:
    def register() -> None:
        store.register_feature("probe", "metadata only", ["user_id"], version="meta")

    if order == "register first":
        register()
    store.save_feature(FRAME, "probe", "v1", join_keys=["user_id"])
    if order == "save first":
        register()
    described = store.describe("probe")
    assert described.versions == ("v1",)
    assert [c.name for c in described.columns] == ["user_id", "score"]  # the saved version's
    assert store.get_feature("probe").sort_values("user_id")["score"].tolist() == [1.0, 2.0]
    assert "probe" in [f.name for f in store.list_features()]


def test_a_saved_version_cannot_be_registered_or_saved_again(store, tmp_path) -> None:
    store.save_feature(FRAME, "probe", "v1", join_keys=["user_id"])
    with pytest.raises(FeatureStoreError, match="'v1' of probe is saved; versions are immutable"):
        store.register_feature("probe", "again", ["user_id"], version="v1")
    with pytest.raises(FeatureStoreError, match="exists; versions are immutable"):
        store.save_feature(FRAME.assign(score=9.0), "probe", "v1")
    assert store.describe("probe").versions == ("v1",)  # still there, still its table
    assert store.get_feature("probe", version="v1")["score"].sum() == 3.0
    # a metadata-only row may be replaced, and filled by saving that version
    store.register_feature("other", "first words", ["user_id"], version="v2")
    store.register_feature("other", "better words", ["user_id"], version="v2")
    store.save_feature(FRAME, "other", "v2")
    assert store.describe("other").description == "better words"
    assert store.describe("other").versions == ("v2",)


@pytest.mark.parametrize(
    "name, version", [("probe\n", "v1"), ("probe", "v3\n"), ("probe", "v3\n;drop"), ("Probe", "v1")]
)
def test_names_and_versions_are_matched_whole(store, name, version) -> None:
    with pytest.raises(FeatureStoreError, match="invalid"):
        store.save_feature(FRAME, name, version, join_keys=["user_id"])
    assert not (store.store_file.exists() and _tables(store))


def test_versions_that_share_a_table_are_refused_by_the_store(store) -> None:
    store.save_feature(FRAME, "probe", "v.4", join_keys=["user_id"])
    for clash in ("v-4", "v_4"):
        with pytest.raises(FeatureStoreError, match=r"table probe__v_4, which version 'v.4'"):
            store.save_feature(FRAME, "probe", clash)
    assert store.describe("probe").versions == ("v.4",)
    assert _tables(store) == ["probe__v_4", "registry"]


def _tables(store: FeatureStore) -> list[str]:
    with duckdb.connect(str(store.store_file), read_only=True) as con:
        return [
            t
            for (t,) in con.execute("select table_name from duckdb_tables() order by 1").fetchall()
        ]


# ------------------------------------------- the history of a dbt-built set, found in the manifest
def _model(name: str, schema: str, meta: dict) -> dict:
    return {
        "unique_id": f"model.recomart.{name}",
        "resource_type": "model",
        "name": name,
        "schema": schema,
        "alias": name,
        "description": f"One row per {name}.",
        "original_file_path": f"models/{name}.sql",
        "config": {"meta": meta, "tags": ["features"]},
        "columns": {"user_id": {"data_type": "varchar", "description": "The user."}},
    }


def _manifest(tmp_path, *nodes: dict):
    """A dbt target folder whose manifest.json holds `nodes` (no parents, no children)."""
    target = tmp_path / "dbt_target"
    target.mkdir()
    manifest = {
        "nodes": {node["unique_id"]: node for node in nodes},
        "parent_map": {},
        "child_map": {},
        "sources": {},
    }
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


SET_META = {"feature_store": {"entity": "user", "join_keys": ["user_id"]}}


def test_a_set_reads_its_past_from_the_view_that_declares_history_of_it(tmp_path) -> None:
    target = _manifest(
        tmp_path,
        _model("user_features", "marts", SET_META),
        _model("other_features", "marts", SET_META),
        _model("user_features_versions", "history", {"unique_key": "user_id"}),
        _model("user_features_history", "history", {"history_of": "user_features"}),
    )
    store = FeatureStore(warehouse=tmp_path / "warehouse.duckdb", dbt_target=target)
    users = store.describe("user_features")
    assert users.history == "history.user_features_history"
    assert store.describe("other_features").history is None
    at = datetime(2026, 10, 1, 12)
    relation, where, params = relation_for(users, None, at)
    assert relation == '"history"."user_features_history"'
    assert where == "valid_from <= ? and (valid_to is null or ? < valid_to)" and params == [at, at]
    with pytest.raises(FeatureStoreError, match="other_features has no history"):
        relation_for(store.describe("other_features"), None, at)
    assert relation_for(users, None, None)[0] == '"marts"."user_features"'  # now: the mart


def test_two_histories_of_one_set_are_refused(tmp_path) -> None:
    target = _manifest(
        tmp_path,
        _model("user_features", "marts", SET_META),
        _model("user_features_history", "history", {"history_of": "user_features"}),
        _model("user_features_past", "history", {"history_of": "user_features"}),
    )
    store = FeatureStore(warehouse=tmp_path / "warehouse.duckdb", dbt_target=target)
    with pytest.raises(FeatureStoreError, match="two dbt models declare history_of: user_features"):
        store.list_features()
