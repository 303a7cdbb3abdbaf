"""`make test-spark`: the whole pipeline on Spark gives what it gives on DuckDB, over two runs.

Two homes get the same small generated data; `recomart --engine duckdb demo` runs in one and
`recomart --engine spark demo` in the other (ingest, the lake, dbt on Spark, the Soda gate on
Spark, MLlib ALS), each in its own process as a user runs it. Every mart and every feature history
table is compared by a digest of its rows (tests/test_spark_transform.py's table_digest; a column
holding a run's own clock, a load id or a history's valid_from, as the run's rank). Then a second
file of interactions arrives in both drop folders and both run again. On Spark the model is fitted
by MLlib and beats the popularity baseline on the holdout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import config_for, small_config, with_code_under_test
from test_spark_transform import add_new_rows, table_digest
from test_spark_transform import pytestmark as spark_marks

from recomart_core import config, engine
from recomart_core import schema as s

pytestmark = spark_marks

MARTS = [s.INTERACTIONS_MART, s.REJECTED_MART, "user_features", "item_features",
         "user_item_features"]  # fmt: skip
HISTORY = ["user_features_versions", "item_features_versions"]
HISTORY_SCHEMA = "history"
RUN_SECONDS = 3600  # a whole Spark run on 2 shared cores: minutes, not an hour


def demo(home: Path, cfg_file: Path, engine_name: str) -> None:
    """`recomart --engine <engine_name> demo` in a child process against home."""
    env = with_code_under_test(
        {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(cfg_file)}
    )
    env.pop("SOURCES__CATALOG__BASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "recomart.cli", "--engine", engine_name, "demo"],
        env=env, capture_output=True, text=True, timeout=RUN_SECONDS,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"recomart --engine {engine_name} demo exited {proc.returncode}:\n"
                    f"{proc.stderr[-6000:]}")  # fmt: skip


RUN_COLUMNS = {  # columns that hold each run's own clock: compared as the run's rank
    s.INTERACTIONS_MART: "load_id",  # the dlt load that brought the row (its start time)
    s.REJECTED_MART: "load_id",
    **dict.fromkeys(HISTORY, "valid_from"),  # the build that recorded the version
}


def ranked(table: str, relation: str) -> str:
    """relation, with the table's RUN_COLUMNS column as the rank of its run: the two homes
    ingest and build at their own times, so their load ids and valid_from differ, not their
    order."""
    column = RUN_COLUMNS.get(table)
    if column is None:
        return relation
    rank = f"dense_rank() over (order by {column})"
    return f"(select * replace ({rank} as {column}) from {relation})"


def duckdb_digests(cfg: config.Config) -> dict[str, dict]:
    """Digests of the marts and history tables of the published DuckDB warehouse."""
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return {
            **{m: table_digest(con, ranked(m, f"{s.MARTS_SCHEMA}.{m}")) for m in MARTS},
            **{h: table_digest(con, ranked(h, f"{HISTORY_SCHEMA}.{h}")) for h in HISTORY},
        }


def spark_digests(cfg: config.Config) -> dict[str, dict]:
    """Digests of the same tables as Spark wrote them (Parquet folders in its warehouse)."""

    def files(schema: str, table: str) -> str:
        folder = engine.spark_table_path(cfg, schema, table)
        assert any(folder.glob("*.parquet")), f"Spark wrote no Parquet for {schema}.{table}"
        return f"read_parquet('{folder}/*.parquet')"

    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        return {
            **{m: table_digest(con, ranked(m, files(s.MARTS_SCHEMA, m))) for m in MARTS},
            **{h: table_digest(con, ranked(h, files(HISTORY_SCHEMA, h))) for h in HISTORY},
        }


def test_the_pipeline_on_spark_gives_duckdbs_tables_over_two_runs(tmp_path: Path) -> None:
    homes = {name: tmp_path / name for name in (engine.DUCKDB, engine.SPARK)}
    for home in homes.values():
        home.mkdir()
    files = {name: small_config(home) for name, home in homes.items()}
    for path in files.values():  # the Spark: local[2]
        path.write_text(path.read_text().replace('master = "local[*]"', 'master = "local[2]"'))
    cfgs = {name: config_for(home, files[name]) for name, home in homes.items()}
    duck, spark = cfgs[engine.DUCKDB], cfgs[engine.SPARK]
    demo(homes[engine.DUCKDB], files[engine.DUCKDB], engine.DUCKDB)  # generates the data
    shutil.copytree(duck.paths.generated, spark.paths.generated)
    demo(homes[engine.SPARK], files[engine.SPARK], engine.SPARK)

    first = duckdb_digests(duck)
    assert spark_digests(spark) == first
    assert all(first[table]["rows"] > 0 for table in [*MARTS, *HISTORY])

    # what a Spark run trained: MLlib's ALS, better than popularity on the holdout, promoted
    report = json.loads((spark.paths.reports / "train_metrics.json").read_text())
    assert report["family"] == "als"
    assert report["engine"] == engine.SPARK
    promotion = report["promotion"]
    assert promotion["candidate"] > promotion["baselines"]["popularity"]
    assert promotion["promote"] is True

    for name in homes:  # a second file arrives in both drop folders; both run again
        add_new_rows(cfgs[name], homes[name])
        demo(homes[name], files[name], name)
    second = duckdb_digests(duck)
    assert spark_digests(spark) == second
    interactions = s.INTERACTIONS_MART
    assert second[interactions]["rows"] > first[interactions]["rows"]
    for table in HISTORY:  # new versions appended; the old ones kept
        assert second[table]["rows"] > first[table]["rows"], table
