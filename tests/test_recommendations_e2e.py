"""Training on the real pipeline's warehouse: batch recommendations and the recommend command."""

import duckdb
import pytest
from conftest import run_stage

pytestmark = pytest.mark.e2e


def test_batch_recommendations_table_for_every_user(pipeline_run: dict) -> None:
    cfg = pipeline_run["cfg"]
    k = cfg.train["k"]
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        users = con.sql("select count(distinct user_id) from marts.interactions").fetchall()[0][0]
        table = con.sql("select * from recommendations.user_recommendations").df()
        catalog = set(con.sql("select item_id from marts.item_features").df()["item_id"])
    assert table["user_id"].nunique() == users
    assert len(table) == users * k and set(table["rank"]) == set(range(1, k + 1))
    assert table["model_version"].nunique() == 1 and set(table["item_id"]) <= catalog
    assert not table.duplicated(["user_id", "item_id"]).any()


def test_recommend_command_explains(pipeline_run: dict) -> None:
    cfg = pipeline_run["cfg"]
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        user = con.sql(
            "select user_id from marts.interactions group by 1 order by count(*) desc limit 1"
        ).fetchall()[0][0]
    out = run_stage(pipeline_run["home"], cfg.paths.home / "recomart.toml", "recommend",
                    str(user), "-n", "3", "--explain").stdout  # fmt: skip
    assert f"user {user}: collaborative (ALS)" in out
    assert out.count("because of item") >= 3
