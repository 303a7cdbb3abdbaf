"""The published marts as Parquet files: <paths.features>/<mart>.parquet, what DVC versions.

Written after the quality gate passes (recomart.pipeline.quality), from the live warehouse opened
read-only (export_marts) or, with engine = "spark", from the Parquet folders dbt-spark wrote
(export_spark_marts; published_marts picks by engine): whole tables through DuckDB's COPY, rows
in a fixed order (ORDER BY ALL) so the same marts give the same files. Timestamps with a time
zone (Spark writes its timestamps as UTC instants) are written as UTC wall-clock timestamps, the
type the DuckDB marts have. All or nothing: the files are written to a new folder that then
replaces the old one, so a failure leaves the last export in place.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import duckdb

from recomart_core import config, engine
from recomart_core.schema import MARTS_SCHEMA
from recomart_core.warehouse import mart_rows


def published_marts(cfg: config.Config) -> dict[str, int]:
    """Export the marts that cfg's engine published to cfg.paths.features: the live DuckDB
    warehouse, or Spark's marts folders; return {table: rows}."""
    if engine.is_spark(cfg):
        marts = engine.spark_table_path(cfg, MARTS_SCHEMA, "_").parent
        return export_spark_marts(marts, cfg.paths.features)
    return export_marts(cfg.paths.warehouse, cfg.paths.features)


def export_marts(warehouse: Path, folder: Path) -> dict[str, int]:
    """Write every table of the marts schema to folder/<table>.parquet; return {table: rows}."""

    def write(con: duckdb.DuckDBPyConnection, staging: Path) -> dict[str, int]:
        rows = mart_rows(con)
        for table in rows:
            _copy(con, f'{MARTS_SCHEMA}."{table}"', staging / f"{table}.parquet", utc=False)
        return rows

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return _replace(Path(folder), partial(write, con))


def export_spark_marts(marts: Path, folder: Path) -> dict[str, int]:
    """Write every table that dbt-spark built in `marts` (its marts.db folder: one folder of
    Parquet files per table) to folder/<table>.parquet; return {table: rows}. Raises
    FileNotFoundError when `marts` holds no table."""
    tables = sorted(p for p in Path(marts).glob("*") if p.is_dir() and any(p.rglob("*.parquet")))
    if not tables:
        raise FileNotFoundError(f"No Spark marts in {marts}: build on Spark first")

    def write(con: duckdb.DuckDBPyConnection, staging: Path) -> dict[str, int]:
        rows = {}
        for table in tables:
            pattern = str(table / "**" / "*.parquet").replace("'", "''")
            relation = f"read_parquet('{pattern}')"
            _copy(con, relation, staging / f"{table.name}.parquet", utc=True)
            rows[table.name] = con.execute(f"select count(*) from {relation}").fetchone()[0]
        return rows

    with duckdb.connect() as con:
        return _replace(Path(folder), partial(write, con))


def _copy(con: duckdb.DuckDBPyConnection, relation: str, target: Path, utc: bool) -> None:
    """COPY `relation` to the Parquet file `target`, rows ordered by all columns; with `utc`,
    timestamps with time zone as UTC wall-clock timestamps (the connection's time zone is
    then UTC)."""
    select = "*"
    if utc:
        con.execute("set TimeZone = 'UTC'")
        columns = con.execute(f"describe select * from {relation}").fetchall()
        select = ", ".join(
            f'cast("{name}" as timestamp) as "{name}"'
            if kind == "TIMESTAMP WITH TIME ZONE"
            else f'"{name}"'
            for name, kind, *_ in columns
        )
    path = str(target).replace("'", "''")
    con.execute(
        f"copy (select {select} from {relation} order by all)"
        f" to '{path}' (format parquet, compression zstd)"
    )


def _replace(folder: Path, write: Callable[[Path], dict[str, int]]) -> dict[str, int]:
    """Run write(staging folder), then swap the staging folder in for `folder`; its result."""
    staging = folder.with_name(folder.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rows = write(staging)
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return rows


def warehouse_from_features(folder: Path, warehouse: Path) -> dict[str, int]:
    """A DuckDB file whose marts schema holds the Parquet marts of folder (recomart reproduce
    trains on an exported version); return {table: rows}."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"create schema if not exists {MARTS_SCHEMA}")
        for path in sorted(Path(folder).glob("*.parquet")):
            con.execute(
                f'create or replace table {MARTS_SCHEMA}."{path.stem}" as'
                f" select * from read_parquet('{path}')"
            )
        return mart_rows(con)
