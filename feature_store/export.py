"""The published marts as Parquet files: <paths.features>/<mart>.parquet, what DVC versions.

Written after the quality gate passes (recomart.pipeline.quality), from the live warehouse opened
read-only, whole tables through DuckDB's COPY, rows in a fixed order (ORDER BY ALL) so the same
marts give the same files. All or nothing: the files are written to a new folder that then
replaces the old one, so a failure leaves the last export in place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from recomart_core.schema import MARTS_SCHEMA
from recomart_core.warehouse import mart_rows


def export_marts(warehouse: Path, folder: Path) -> dict[str, int]:
    """Write every table of the marts schema to folder/<table>.parquet; return {table: rows}."""
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = mart_rows(con)
        for table in rows:
            con.execute(
                f'copy (select * from {MARTS_SCHEMA}."{table}" order by all)'
                f" to '{staging / f'{table}.parquet'}' (format parquet, compression zstd)"
            )
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
