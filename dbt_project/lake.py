"""The raw datasets as Parquet files ("the lake"), for a dbt build on Spark.

dlt loads the raw datasets (raw_interactions, raw_catalog) into the DuckDB warehouse. The Spark
build reads them as Parquet: export_raw writes every table of those datasets to
<lake>/<dataset>/<table>/, one folder per table, and the dbt project registers each folder as an
external table when it starts (macros/lake.sql, given lake_var(lake) as its var `lake`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from recomart_core import schema as s

RAW_DATASETS = (s.RAW_INTERACTIONS_DATASET, s.RAW_CATALOG_DATASET)
PART_FILE = "part-0.parquet"

# DuckDB types that Spark cannot read from Parquet (UUID, TIMESTAMP_NS, INTERVAL fail; a HUGEINT
# becomes a double), cast to ones it reads the same: {DuckDB type: SQL type to cast to}.
SPARK_SAFE_TYPES = {
    "UUID": "varchar",
    "INTERVAL": "varchar",
    "JSON": "varchar",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "HUGEINT": "bigint",
    "UHUGEINT": "bigint",
}


def _column_sql(name: str, data_type: str) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    target = SPARK_SAFE_TYPES.get(data_type.upper())
    return f"cast({quoted} as {target}) as {quoted}" if target else quoted


def export_raw(warehouse: Path, lake: Path) -> dict[str, int]:
    """Write every table of the raw datasets of the DuckDB file `warehouse` (opened read-only) to
    `lake` as Parquet, <lake>/<dataset>/<table>/part-0.parquet, each table's folder replaced
    whole (a table dlt has not created is not written). Columns of a type Spark cannot read are
    cast (SPARK_SAFE_TYPES); timestamps with time zone are written as UTC instants.
    Returns {"<dataset>.<table>": rows written}."""
    written: dict[str, int] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        columns = con.execute(
            "select table_schema, table_name, column_name, data_type"
            " from information_schema.columns"
            " where table_schema in (select unnest($datasets))"
            " and table_catalog = current_database()"
            " order by table_schema, table_name, ordinal_position",
            {"datasets": list(RAW_DATASETS)},
        ).fetchall()
        tables: dict[tuple[str, str], list[str]] = {}
        for dataset, table, column, data_type in columns:
            tables.setdefault((dataset, table), []).append(_column_sql(column, data_type))
        for (dataset, table), select_list in tables.items():
            folder = lake / dataset / table
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            target = str(folder / PART_FILE).replace("'", "''")
            con.execute(
                f'copy (select {", ".join(select_list)} from "{dataset}"."{table}")'
                f" to '{target}' (format parquet)"
            )
            written[f"{dataset}.{table}"] = con.execute(
                f'select count(*) from "{dataset}"."{table}"'
            ).fetchone()[0]
    return written


def lake_tables(lake: Path) -> list[str]:
    """The tables of the lake, "<dataset>.<table>", sorted: every folder holding Parquet files."""
    return sorted(
        f"{folder.parent.name}.{folder.name}"
        for dataset in RAW_DATASETS
        if (lake / dataset).is_dir()
        for folder in (lake / dataset).iterdir()
        if folder.is_dir() and any(folder.glob("*.parquet"))
    )


def lake_var(lake: Path) -> dict:
    """The dbt var `lake` of the lake folder: {"path": absolute path, "tables": lake_tables}."""
    return {"path": str(lake.resolve()), "tables": lake_tables(lake)}
