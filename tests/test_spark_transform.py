"""The dbt project on Apache Spark gives the marts DuckDB gives, for the same input, twice.

Small generated data goes through the pipeline's own ingest and transform (DuckDB); the raw
datasets are exported to the lake as Parquet (dbt_project/lake.py) and the same dbt project builds
on Spark (dbt-spark session, `--target spark`) from them. Every intermediate table and every mart is
compared by a digest of its rows (sorted; doubles to 9 significant digits; timestamps in UTC), read
by DuckDB from both sides (Spark's tables are Parquet folders). Then a second ingest adds new rows
and both engines build again. dbt's data tests and unit tests run on Spark too (first round).
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from conftest import config_for, run_stage, small_config

from dbt_project import build, lake
from recomart.demo import datagen
from recomart_core import config, engine
from recomart_core import schema as s
from recomart_core.warehouse import candidate_path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.spark,
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None
        or importlib.util.find_spec("dbt.adapters.spark") is None,
        reason="pyspark and dbt-spark are not installed: pip install -e '.[dev,spark]'",
    ),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 (no `java`)"),
]

log = logging.getLogger(__name__)

# The tables dbt builds as tables (staging models are views: nothing stored to compare).
COMPARED = [
    "intermediate.int_interactions_deduplicated",
    "intermediate.int_interactions_validated",
    "intermediate.int_feature_reference_time",
    f"{s.MARTS_SCHEMA}.{s.INTERACTIONS_MART}",
    f"{s.MARTS_SCHEMA}.{s.REJECTED_MART}",
    f"{s.MARTS_SCHEMA}.user_features",
    f"{s.MARTS_SCHEMA}.item_features",
    f"{s.MARTS_SCHEMA}.user_item_features",
]
NUMBER_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL")
NULL_TEXT = "\\N"
SPARK_LITTER = ("metastore_db", "spark-warehouse", "derby.log")  # Spark's defaults: the cwd


def _text_sql(column: str, data_type: str) -> str:
    """SQL turning one column into comparable text: numbers with a fraction to 9 significant
    digits, timestamps (with or without time zone) as UTC wall-clock time, others as text."""
    quoted = '"' + column.replace('"', '""') + '"'
    upper = data_type.upper()
    if upper.startswith(NUMBER_TYPES):
        text = f"printf('%.9g', cast({quoted} as double))"
    elif upper.startswith("TIMESTAMP"):
        text = f"cast(cast({quoted} as timestamp) as varchar)"
    else:
        text = f"cast({quoted} as varchar)"
    return f"coalesce({text}, '{NULL_TEXT}')"


def table_digest(con: duckdb.DuckDBPyConnection, relation: str) -> dict:
    """{"columns": [names], "rows": row count, "md5": md5 of the rows' texts, sorted, one a line}
    of `relation` (a table name or a read_parquet(...) call) in `con` (session time zone UTC)."""
    columns = con.execute(f"describe select * from {relation}").fetchall()
    row_text = "concat_ws('|', " + ", ".join(_text_sql(c[0], c[1]) for c in columns) + ")"
    rows, digest = con.execute(
        f"select count(*), md5(coalesce(string_agg(row_text, chr(10) order by row_text), ''))"
        f" from (select {row_text} as row_text from {relation}) as texts"
    ).fetchone()
    return {"columns": [c[0] for c in columns], "rows": rows, "md5": digest}


def spark_relation(cfg: config.Config, table: str) -> str:
    """The Parquet files of a table Spark built: <warehouse>/<database>.db/<table>/."""
    database, name = table.split(".")
    folder = engine.spark_table_path(cfg, database, name)
    assert any(folder.glob("*.parquet")), f"Spark wrote no Parquet for {table} in {folder}"
    return f"read_parquet('{folder}/*.parquet')"


def digests(cfg: config.Config) -> tuple[dict, dict]:
    """The digest of every COMPARED table: (DuckDB's candidate warehouse, Spark's tables)."""
    with duckdb.connect(str(candidate_path(cfg.paths.warehouse)), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        on_duckdb = {table: table_digest(con, table) for table in COMPARED}
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        on_spark = {table: table_digest(con, spark_relation(cfg, table)) for table in COMPARED}
    return on_duckdb, on_spark


def signal_counts(con: duckdb.DuckDBPyConnection, marts: dict[str, str]) -> dict[str, int]:
    """Counts that a wrong port changes: rejected rows per reason, imputed ratings, repeats,
    users with a favourite category, pairs with a preferred hour. `marts`: mart -> relation."""
    reasons = con.execute(
        f"select rejection_reason, count(*) from {marts['rejected_interactions']}"
        " group by rejection_reason"
    ).fetchall()
    imputed, repeats = con.execute(
        f"select count(*) filter (where is_rating_imputed), count(*) filter (where is_repeat)"
        f" from {marts['interactions']}"
    ).fetchone()
    favourites = con.execute(
        f"select count(favourite_category) from {marts['user_features']}"
    ).fetchone()[0]
    return {
        **{f"rejected: {reason}": n for reason, n in reasons},
        "imputed ratings": imputed,
        "repeats": repeats,
        "users with a favourite category": favourites,
    }


def _marts(relation_of) -> dict[str, str]:
    return {
        name: relation_of(f"{s.MARTS_SCHEMA}.{name}")
        for name in ("interactions", "rejected_interactions", "user_features")
    }


def both_signal_counts(cfg: config.Config) -> tuple[dict, dict]:
    with duckdb.connect(str(candidate_path(cfg.paths.warehouse)), read_only=True) as con:
        on_duckdb = signal_counts(con, _marts(lambda table: table))
    with duckdb.connect() as con:
        on_spark = signal_counts(con, _marts(lambda table: spark_relation(cfg, table)))
    return on_duckdb, on_spark


# Spark pays a JVM start (~15 s) per dbt command and ~1 s per data test on 2 cores, so the first
# round runs everything in one `dbt build` (models, data tests and unit tests) and the second,
# after new rows, rebuilds the models only (`dbt run`): the data tests ran on Spark in the first.
FIRST_ROUND = ["build", *build.SPARK_EXCLUDES]
SECOND_ROUND = ["run", *build.SPARK_EXCLUDES]


def build_both(home: Path, cfg_file: Path, cfg: config.Config, spark_command: list[str]) -> None:
    """The pipeline's transform (DuckDB: its candidate warehouse), the lake export, then
    `spark_command` on Spark (raises DbtError when a model or test fails); logs the seconds."""
    started = time.perf_counter()
    run_stage(home, cfg_file, "transform")
    duckdb_s = time.perf_counter() - started
    exported = lake.export_raw(cfg.paths.warehouse, cfg.paths.lake)
    assert exported[f"{s.RAW_INTERACTIONS_DATASET}.{s.RAW_INTERACTIONS_TABLE}"] > 0
    started = time.perf_counter()
    build.register_lake(cfg)
    build.run_dbt(spark_command, cfg, target=build.SPARK)
    spark_s = time.perf_counter() - started
    log.warning(
        "seconds: DuckDB transform stage %.1f, Spark dbt %s %.1f",
        duckdb_s,
        spark_command[0],
        spark_s,
    )


def add_new_rows(cfg: config.Config, home: Path) -> None:
    """A second file of interactions in the drop folder: another seed's users, items of the same
    catalog, defects included, so the second ingest loads new rows."""
    generator = cfg.generator or {}
    out = home / "more_generated"
    datagen.generate(
        out,
        seed=7,
        n_users=generator.get("n_users", 400),
        n_items=generator.get("n_items", 150),
        n_interactions=3000,
        start=generator.get("start", "2026-05-01"),
        days=generator.get("days", 184),
        defect_rate=0.05,
    )
    drop_folder = Path(cfg.paths.interactions_glob).parent
    shutil.copy(out / datagen.INTERACTIONS_FILE, drop_folder / "more.csv")


def test_spark_builds_the_marts_duckdb_builds_over_two_inputs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cfg_file = small_config(home)
    cfg = config_for(home, cfg_file)
    in_working_directory = {name: (Path.cwd() / name).exists() for name in SPARK_LITTER}
    run_stage(home, cfg_file, "generate")
    run_stage(home, cfg_file, "ingest")

    build_both(home, cfg_file, cfg, FIRST_ROUND)
    first_duckdb, first_spark = digests(cfg)
    assert first_spark == first_duckdb
    counts_duckdb, counts_spark = both_signal_counts(cfg)
    assert counts_spark == counts_duckdb
    # the data exercises what the port changed: rejections of several kinds (duplicates,
    # unknown items, ...), ratings imputed through the as-of counts, repeats, favourite categories
    assert sum(1 for key in counts_duckdb if key.startswith("rejected: ")) >= 3
    assert counts_duckdb["imputed ratings"] > 0
    assert counts_duckdb["repeats"] > 0
    assert counts_duckdb["users with a favourite category"] > 0

    add_new_rows(cfg, home)
    run_stage(home, cfg_file, "ingest")
    build_both(home, cfg_file, cfg, SECOND_ROUND)
    second_duckdb, second_spark = digests(cfg)
    assert second_spark == second_duckdb
    assert both_signal_counts(cfg)[1] == both_signal_counts(cfg)[0]
    interactions = f"{s.MARTS_SCHEMA}.{s.INTERACTIONS_MART}"
    assert second_duckdb[interactions]["rows"] > first_duckdb[interactions]["rows"]
    for table in COMPARED:  # every table but the reference time (the latest event) changed
        if not table.endswith("int_feature_reference_time"):
            assert second_duckdb[table]["md5"] != first_duckdb[table]["md5"], table

    # Spark kept its metastore and warehouse in the home's data folder, none in the working
    # directory
    assert (cfg.paths.spark / "metastore_db").is_dir()
    assert (cfg.paths.spark / "warehouse" / "marts.db").is_dir()
    for name, existed in in_working_directory.items():
        assert (Path.cwd() / name).exists() == existed, name
