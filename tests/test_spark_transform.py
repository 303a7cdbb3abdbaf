"""The dbt project on Apache Spark gives the tables and history DuckDB gives, for the same input.

Small generated data goes through the pipeline's own ingest, with engine spark: dlt loads the
DuckDB warehouse, then copies the raw datasets to the lake as Parquet with its filesystem
destination (dlt_pipelines/lake_pipeline.py). The pipeline's transform builds on DuckDB from the
warehouse, and the same dbt project builds on Spark (dbt-spark session, `--target spark`) from the
lake. Every intermediate table, every mart and the feature history (the versions tables and the
history views, both engines given the same var history_as_of in a round) is compared by a digest
of its rows (sorted; doubles to 9 significant digits; timestamps in UTC), read by DuckDB from both
sides (Spark's tables are Parquet folders; its views are run by Spark over them). Then a second
ingest adds new rows and both engines build again: the history gets its second versions. dbt's
data tests and unit tests run on Spark too (first round).
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
from recomart_core.warehouse import candidate_path, publish_candidate

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
    "history.user_features_versions",
    "history.item_features_versions",
]
# The history views (models/history/): no files of their own on Spark, so Spark runs each view's
# compiled SQL over the versions' Parquet (history_views_on_spark) and the result is compared.
HISTORY_VIEWS = ["history.user_features_history", "history.item_features_history"]
# The valid_from of each round's new versions, the same on both engines (var history_as_of)
HISTORY_AS_OF = ["2030-01-01T00:00:00", "2030-01-02T00:00:00"]
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


def history_views_on_spark(cfg: config.Config, out: Path) -> dict[str, str]:
    """Each of HISTORY_VIEWS as Spark computes it, written to out/<view>/ as Parquet: the view's
    SQL as dbt compiled it for Spark, run by a Spark session of this process over the versions
    tables' Parquet folders (registered under their own names, so the SQL runs unchanged).
    Returns {view: read_parquet relation of its rows}."""
    compiled = cfg.paths.dbt_target / build.SPARK / "compiled" / "recomart" / "models" / "history"
    relations = {}
    with engine.spark_session(cfg, app="history views") as spark:
        spark.sql("create database if not exists history")
        for versions in ("user_features_versions", "item_features_versions"):
            folder = engine.spark_table_path(cfg, "history", versions)
            spark.sql(f"drop table if exists history.{versions}")
            spark.sql(f"create table history.{versions} using parquet location '{folder}'")
        for view in HISTORY_VIEWS:
            name = view.split(".")[1]
            target = out / name
            spark.sql((compiled / f"{name}.sql").read_text()).write.mode("overwrite").parquet(
                str(target)
            )
            relations[view] = f"read_parquet('{target}/*.parquet')"
    return relations


def digests(cfg: config.Config, out: Path) -> tuple[dict, dict]:
    """The digest of every COMPARED table and HISTORY_VIEWS view: (DuckDB's candidate warehouse,
    Spark's tables and views; out: a folder for the views' rows)."""
    with duckdb.connect(str(candidate_path(cfg.paths.warehouse)), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        on_duckdb = {table: table_digest(con, table) for table in [*COMPARED, *HISTORY_VIEWS]}
    views = history_views_on_spark(cfg, out)
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        on_spark = {table: table_digest(con, spark_relation(cfg, table)) for table in COMPARED}
        on_spark.update({view: table_digest(con, views[view]) for view in HISTORY_VIEWS})
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
FIRST_ROUND = ["build"]
SECOND_ROUND = ["run"]


def build_both(cfg: config.Config, spark_command: list[str], history_as_of: str) -> None:
    """The pipeline's transform on DuckDB (its candidate warehouse), then `spark_command` on Spark
    from the lake the ingest wrote (raises DbtError when a model or test fails), both with var
    history_as_of; logs the seconds."""
    variables = {"history_as_of": history_as_of}
    started = time.perf_counter()
    build.run(cfg, variables=variables)
    duckdb_s = time.perf_counter() - started
    interactions = f"{s.RAW_INTERACTIONS_DATASET}.{s.RAW_INTERACTIONS_TABLE}"
    assert interactions in lake.lake_var(cfg.paths.lake)["tables"]
    started = time.perf_counter()
    build.register_lake(cfg)
    build.run_dbt(spark_command, cfg, target=build.SPARK, variables=variables)
    spark_s = time.perf_counter() - started
    log.warning(
        "seconds: DuckDB transform stage %.1f, Spark dbt %s %.1f",
        duckdb_s,
        spark_command[0],
        spark_s,
    )


def history_rounds(cfg: config.Config, spark: bool = False) -> dict[str, int]:
    """From user_features_versions (DuckDB's candidate, or Spark's Parquet): versions per round
    and the round-one versions a round-two version replaced (a valid_to in the history view)."""
    versions = "history.user_features_versions"
    relation = spark_relation(cfg, versions) if spark else versions
    database = ":memory:" if spark else str(candidate_path(cfg.paths.warehouse))
    with duckdb.connect(database, read_only=not spark) as con:
        con.execute("set TimeZone = 'UTC'")
        one, two, closed = con.execute(
            f"""
            with bounded as (
                select valid_from, lead(valid_from) over (
                    partition by user_id order by valid_from
                ) as valid_to
                from {relation}
            )
            select
                count(*) filter (where valid_from = cast($one as timestamp)),
                count(*) filter (where valid_from = cast($two as timestamp)),
                count(valid_to)
            from bounded
            """,
            {"one": HISTORY_AS_OF[0], "two": HISTORY_AS_OF[1]},
        ).fetchone()
    return {
        "versions from round one": one,
        "versions from round two": two,
        "closed in round two": closed,
    }


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
    cfg_file = small_config(home, engine='"spark"')  # ingest copies to the lake
    cfg = config_for(home, cfg_file)
    assert engine.is_spark(cfg)
    in_working_directory = {name: (Path.cwd() / name).exists() for name in SPARK_LITTER}
    run_stage(home, cfg_file, "generate")
    run_stage(home, cfg_file, "ingest")

    build_both(cfg, FIRST_ROUND, HISTORY_AS_OF[0])
    first_duckdb, first_spark = digests(cfg, tmp_path / "first")
    assert first_spark == first_duckdb
    counts_duckdb, counts_spark = both_signal_counts(cfg)
    assert counts_spark == counts_duckdb
    # the data exercises what the port changed: rejections of several kinds (duplicates,
    # unknown items, ...), ratings imputed through the as-of counts, repeats, favourite categories
    assert sum(1 for key in counts_duckdb if key.startswith("rejected: ")) >= 3
    assert counts_duckdb["imputed ratings"] > 0
    assert counts_duckdb["repeats"] > 0
    assert counts_duckdb["users with a favourite category"] > 0

    # the history has a version of every user and item, all from round one
    users = first_duckdb[f"{s.MARTS_SCHEMA}.user_features"]["rows"]
    assert first_duckdb["history.user_features_versions"]["rows"] == users
    assert first_duckdb["history.user_features_history"]["rows"] == users

    publish_candidate(cfg)  # as the quality gate does: round two's candidate has the history
    add_new_rows(cfg, home)
    run_stage(home, cfg_file, "ingest")
    build_both(cfg, SECOND_ROUND, HISTORY_AS_OF[1])
    second_duckdb, second_spark = digests(cfg, tmp_path / "second")
    assert second_spark == second_duckdb
    # round two appended versions (changed and new users) and closed the versions they replace
    assert history_rounds(cfg) == history_rounds(cfg, spark=True)
    rounds = history_rounds(cfg)
    assert rounds["versions from round two"] > 0
    assert rounds["closed in round two"] > 0
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
