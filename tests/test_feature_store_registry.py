"""The feature store's own registry (feature_store.registry), without a pipeline run: a
store over an empty warehouse path, so only registered and saved sets exist. Regressions of the
hostile-input review: metadata-only rows, immutable versions, names that end in a newline and
versions that map to one table."""

import duckdb
import pandas as pd
import pytest

from feature_store import FeatureStore
from feature_store.errors import FeatureStoreError

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
