"""`make bench-demo`'s setup: the config it writes and what a cold or warm run starts from."""

import tomllib

from recomart.bench import demo
from recomart_core import config


def test_bench_config_changes_only_the_sizes_and_the_catalog_source():
    text = (config.PROJECT_ROOT / "recomart.toml").read_text()
    sizes, catalog, _, _ = demo.SIZES["catalog-file"]
    changed = tomllib.loads(demo.bench_toml(text, sizes, catalog))
    original = tomllib.loads(text)
    assert {k: changed["generator"][k] for k in sizes} == sizes
    assert changed["catalog"]["source"] == "files"
    assert changed["catalog"]["files"] == "data/generated/catalog/products.json"
    changed["generator"].update({k: original["generator"][k] for k in sizes})
    del changed["catalog"]["files"]
    changed["catalog"]["source"] = original["catalog"]["source"]
    assert changed == original


def test_a_warm_run_keeps_the_tools_state_and_a_cold_one_does_not(tmp_path):
    kept_always = ["recomart.toml", "data/generated/interactions/x.csv"]
    tool_state = ["dbt_target/partial_parse.msgpack", "data/mlflow/mlflow.db"]
    removed = ["data/warehouse/recomart.duckdb", "data/dlt/state", "reports/r.json", "logs/a.log"]
    for name in kept_always + tool_state + removed:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    demo._clean(tmp_path, cold=False)
    assert [n for n in kept_always + tool_state if not (tmp_path / n).exists()] == []
    assert [n for n in removed if (tmp_path / n).exists()] == []
    demo._clean(tmp_path, cold=True)
    assert [n for n in kept_always if not (tmp_path / n).exists()] == []
    assert [n for n in tool_state if (tmp_path / n).exists()] == []
