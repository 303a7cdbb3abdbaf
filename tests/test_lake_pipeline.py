"""The lake (dlt_pipelines/lake_pipeline.py): dlt's filesystem destination copies the raw datasets
of the DuckDB warehouse to Parquet, each row once, incrementally by the warehouse's load ids.

Small generated data is ingested (the pipeline's own ingest, DuckDB), copied to the lake, ingested
again with new rows and copied again. After each copy every raw table in the lake has the rows of
the warehouse's table, no more, no fewer (row counts, a digest of the sorted rows, distinct row
ids); a copy with no new load writes no file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import config_for, run_stage, small_config
from test_spark_transform import add_new_rows, table_digest

from dlt_pipelines import lake_pipeline
from recomart_core import config
from recomart_core import schema as s

pytestmark = pytest.mark.e2e

INTERACTIONS = f"{s.RAW_INTERACTIONS_DATASET}.{s.RAW_INTERACTIONS_TABLE}"
PRODUCTS = f"{s.RAW_CATALOG_DATASET}.{s.RAW_PRODUCTS_TABLE}"


def lake_files(cfg: config.Config) -> dict[str, int]:
    """Every file under the lake folder (data and dlt's own): {relative path: size}."""
    return {
        str(path.relative_to(cfg.paths.lake)): path.stat().st_size
        for path in cfg.paths.lake.rglob("*")
        if path.is_file()
    }


def compare_with_warehouse(cfg: config.Config) -> dict[str, tuple[dict, dict]]:
    """{table: (digest of the warehouse's table, with the lake's casts; digest of its lake
    folder)} for every table of the lake. A digest counts every row with its multiplicity: a row
    copied twice, or not at all, makes the two differ."""
    tables = lake_pipeline.lake_tables(cfg.paths.lake)
    result = {}
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        for table, folder in tables.items():
            dataset, name = table.split(".")
            select = lake_pipeline.raw_tables(con, dataset)[name][0]
            in_lake = f"read_parquet('{cfg.paths.lake / folder}/*.parquet', union_by_name = true)"
            result[table] = (
                table_digest(con, f"(select {', '.join(select)} from {table})"),
                table_digest(con, in_lake),
            )
    return result


def test_the_lake_holds_each_raw_row_once_over_two_ingests(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cfg_file = small_config(home)
    cfg = config_for(home, cfg_file)
    run_stage(home, cfg_file, "generate")
    run_stage(home, cfg_file, "ingest")

    first = lake_pipeline.replicate_to_lake(cfg)
    assert lake_pipeline.lake_tables(cfg.paths.lake) == {
        f"{s.RAW_CATALOG_DATASET}._dlt_loads": f"{s.RAW_CATALOG_DATASET}/ingest_loads",
        PRODUCTS: f"{s.RAW_CATALOG_DATASET}/products",
        f"{s.RAW_INTERACTIONS_DATASET}._dlt_loads": f"{s.RAW_INTERACTIONS_DATASET}/ingest_loads",
        INTERACTIONS: f"{s.RAW_INTERACTIONS_DATASET}/interactions",
        f"{s.RAW_INTERACTIONS_DATASET}.{s.RAW_QUARANTINE_TABLE}": (
            f"{s.RAW_INTERACTIONS_DATASET}/{s.RAW_QUARANTINE_TABLE}"
        ),
        f"{s.RAW_INTERACTIONS_DATASET}.source_files": f"{s.RAW_INTERACTIONS_DATASET}/source_files",
    }  # the lake pipeline's own _dlt_loads, _dlt_version, _dlt_pipeline_state are not tables;
    # the warehouse's record of its loads is (the dbt sources read it), in a folder of its own
    compared = compare_with_warehouse(cfg)
    for table, (in_warehouse, in_lake) in compared.items():
        assert in_lake == in_warehouse, table
    interactions = compared[INTERACTIONS][0]["rows"]
    assert first[s.RAW_INTERACTIONS_DATASET][s.RAW_INTERACTIONS_TABLE] == interactions > 0
    # dlt's default layout: <lake>/<dataset>/<table>/<load id>.<file id>.parquet
    (only_file,) = (cfg.paths.lake / s.RAW_INTERACTIONS_DATASET / "interactions").iterdir()
    assert only_file.name.split(".")[-1] == "parquet"

    files = lake_files(cfg)
    assert lake_pipeline.replicate_to_lake(cfg) == {
        s.RAW_INTERACTIONS_DATASET: {},
        s.RAW_CATALOG_DATASET: {},
    }
    assert lake_files(cfg) == files  # nothing new: not a file written

    add_new_rows(cfg, home)
    run_stage(home, cfg_file, "ingest")
    second = lake_pipeline.replicate_to_lake(cfg)
    compared = compare_with_warehouse(cfg)
    for table, (in_warehouse, in_lake) in compared.items():
        assert in_lake == in_warehouse, table
    # the second copy appended the second load's rows only, in a file of its own
    new_rows = compared[INTERACTIONS][0]["rows"] - interactions
    assert second[s.RAW_INTERACTIONS_DATASET][s.RAW_INTERACTIONS_TABLE] == new_rows > 0
    assert len(list((cfg.paths.lake / s.RAW_INTERACTIONS_DATASET / "interactions").iterdir())) == 2
    # the catalog (dlt merges it: scd2) and the record of loads were loaded again, so their copies
    # were replaced whole: one file each
    assert second[s.RAW_CATALOG_DATASET][s.RAW_PRODUCTS_TABLE] == compared[PRODUCTS][0]["rows"]
    assert len(list((cfg.paths.lake / s.RAW_CATALOG_DATASET / "products").iterdir())) == 1
    assert len(list((cfg.paths.lake / s.RAW_CATALOG_DATASET / "ingest_loads").iterdir())) == 1
