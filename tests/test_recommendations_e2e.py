"""Training on the real pipeline's warehouse: batch recommendations and the recommend command.

The shop's ids are text: the batch table holds them as VARCHAR (an integer id of the marts as
its decimal text), and read_marts gives the same codes whether the marts' ids are BIGINT or
VARCHAR.
"""

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import run_stage

from models_ml import package
from models_ml.data import read_marts

pytestmark = pytest.mark.e2e


def test_batch_recommendations_table_for_every_user(pipeline_run: dict) -> None:
    cfg = pipeline_run["cfg"]
    k = cfg.settings.train.k
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        users = set(con.sql("select user_id::varchar as u from marts.interactions").df()["u"])
        table = con.sql("select * from recommendations.user_recommendations").df()
        catalog = set(con.sql("select item_id::varchar as i from marts.item_features").df()["i"])
        types = dict(
            con.sql(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = 'recommendations' and table_name = 'user_recommendations'"
            ).fetchall()
        )
    assert types["user_id"] == types["item_id"] == "VARCHAR"
    assert set(table["user_id"]) == users and table["user_id"].nunique() == len(users)
    assert len(table) == len(users) * k and set(table["rank"]) == set(range(1, k + 1))
    assert table["model_version"].nunique() == 1 and set(table["item_id"]) <= catalog
    assert not table.duplicated(["user_id", "item_id"]).any()
    # the rows are the champion's lists, in shop ids
    model = package.load_local(cfg.paths.models)
    some = sorted(users)[:5]
    expected, _ = model.recommend_ids(some, k)
    for user, items in zip(some, expected.tolist(), strict=True):
        mine = table[table["user_id"] == user].sort_values("rank")
        assert mine["item_id"].tolist() == items


def test_read_marts_gives_the_same_codes_for_bigint_and_varchar_ids(
    pipeline_run: dict, varchar_run: dict
) -> None:
    as_built = read_marts(pipeline_run["cfg"].paths.warehouse)
    as_text = read_marts(varchar_run["cfg"].paths.warehouse)
    assert as_built.users == as_text.users and as_built.items == as_text.items
    pd.testing.assert_frame_equal(as_built.interactions, as_text.interactions)
    pd.testing.assert_frame_equal(as_built.catalog, as_text.catalog)
    # codes: positions of the ids sorted as text; items: catalog and interaction items
    with duckdb.connect(str(varchar_run["cfg"].paths.warehouse), read_only=True) as con:
        rows = con.sql("select user_id, item_id from marts.interactions").df()
        catalog = con.sql("select item_id from marts.item_features").df()["item_id"]
    assert as_text.users.names.tolist() == sorted(set(rows["user_id"]))
    assert as_text.items.names.tolist() == sorted(set(rows["item_id"]) | set(catalog))
    assert as_text.interactions[["user_id", "item_id"]].dtypes.tolist() == [np.int64, np.int64]
    decoded = sorted(
        zip(
            as_text.users.decode(as_text.interactions["user_id"]).tolist(),
            as_text.items.decode(as_text.interactions["item_id"]).tolist(),
            strict=True,
        )
    )
    assert decoded == sorted(zip(rows["user_id"], rows["item_id"], strict=True))


def test_recommend_command_explains(pipeline_run: dict) -> None:
    cfg = pipeline_run["cfg"]
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        user = con.sql(
            "select user_id from marts.interactions group by 1 order by count(*) desc limit 1"
        ).fetchall()[0][0]
    out = run_stage(pipeline_run["home"], cfg.paths.home / "recomart.toml", "recommend",
                    str(user), "-n", "3", "--explain").stdout  # fmt: skip
    assert f"user {user}: collaborative filtering (ALS (implicit))" in out
    assert out.count("because of item") >= 3
