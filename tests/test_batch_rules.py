"""The batch recommendations under a rule set's default surface (models_ml.batch with the rules
engine of the API), and dbt's test of them (tests/assert_batch_recommendations_obey_rules.sql,
tag batch_rules): ruled lists pass it, the model's own lists and a planted duplicate fail it,
each by the rule they break. On a copy of the real pipeline's warehouse and champion."""

from __future__ import annotations

import shutil
from collections import Counter

import duckdb
import pytest

from dbt_project import build
from models_ml import batch, package
from recomart_core.rulesets import Diversity, Filters, Rules
from recomart_core.warehouse import with_warehouse

pytestmark = pytest.mark.e2e

K = 10


@pytest.fixture(scope="module")
def home(pipeline_run: dict, tmp_path_factory) -> dict:
    cfg = pipeline_run["cfg"]
    copy = tmp_path_factory.mktemp("batch_rules") / "warehouse.duckdb"
    shutil.copy(cfg.paths.warehouse, copy)
    model_dir = package.local_dir(cfg.paths.models)
    model = package.load_recommender(model_dir)
    items = package.read_items(model_dir)
    with duckdb.connect(str(copy), read_only=True) as con:
        categories = [
            row[0]
            for row in con.sql(
                "select category from marts.item_features where category is not null"
                " group by category order by count(*) desc limit 3"
            ).fetchall()
        ]
    rules = Rules(
        filters=Filters(categories=categories[:2], price_max=150),
        exclude_bought="always",
        diversity=Diversity(max_per_category=6),
    )
    return {"cfg": with_warehouse(cfg, copy), "model": model, "items": items, "rules": rules}


def write(home: dict, rules: Rules) -> int:
    return batch.write_recommendations(
        home["cfg"].paths.warehouse, home["model"], K, "recomart", "1", "run", home["items"],
        rules=rules,
    )  # fmt: skip


def rules_test(home: dict) -> None:
    build.run_dbt(
        ["test", "--select", "tag:batch_rules"], home["cfg"],
        variables={"batch_rules": home["rules"].model_dump(mode="json")},
    )  # fmt: skip


def test_ruled_batch_lists_pass_dbts_rules_test_and_the_models_own_fail_it(home, caplog) -> None:
    rows = write(home, home["rules"])
    with duckdb.connect(str(home["cfg"].paths.warehouse), read_only=True) as con:
        listed = con.sql(
            "select r.user_id, r.item_id, i.category, i.price"
            " from recommendations.user_recommendations r"
            " join marts.item_features i on i.item_id::varchar = r.item_id"
        ).fetchall()
    assert rows == len(listed) > 0
    wanted = set(home["rules"].filters.categories)
    assert {category for _, _, category, _ in listed} <= wanted
    assert max(price for *_, price in listed) <= 150
    assert max(Counter((u, c) for u, _, c, _ in listed).values()) <= 6
    rules_test(home)  # passes

    write(home, Rules())  # the model's own lists: other categories, dearer items
    with pytest.raises(build.DbtError), caplog.at_level("INFO", logger="transformation"):
        rules_test(home)
    assert "assert_batch_recommendations_obey_rules" in caplog.text


def test_an_item_listed_twice_fails_the_rules_test(home, caplog) -> None:
    write(home, home["rules"])
    with duckdb.connect(str(home["cfg"].paths.warehouse)) as con:
        con.execute(
            "insert into recommendations.user_recommendations"
            " select * from recommendations.user_recommendations limit 1"
        )
    with pytest.raises(build.DbtError), caplog.at_level("INFO", logger="transformation"):
        rules_test(home)
    assert "Got 1 result" in caplog.text
