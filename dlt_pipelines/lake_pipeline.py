"""Replicate the raw datasets into the lake: `python -m dlt_pipelines.lake_pipeline`.

The DuckDB warehouse stays where data lands: the interactions and catalog pipelines load it
(landing copies, quarantine, each file exactly once). For the Spark engine, this pipeline copies
what they loaded into the lake with dlt's filesystem destination, as Parquet, one dlt pipeline per
raw dataset (`lake_<dataset>`), in dlt's default layout:
<bucket>/<dataset>/<table>/<load id>.<file id>.parquet (dlt's own `_dlt_*` tables beside them).
The bucket is [paths] lake (a local folder), or the `bucket_url` of `[destination.filesystem]` in
.dlt/config.toml (s3://, gs://, az://, with their credentials in .dlt/secrets.toml) for a cluster.

What is copied, read from the warehouse as Arrow record batches (whole batches, no rows in
Python), with the types Spark cannot read cast (SPARK_SAFE_TYPES):
- a table the ingest appends to (dlt write disposition `append`): the rows of every completed load
  (status 0 in the dataset's _dlt_loads) newer than the last one copied, appended: each row reaches
  the lake once, and a run with no new load writes nothing;
- a table the ingest merges or replaces (the catalog's `products`, scd2): the whole table,
  replacing the lake's copy, whenever the dataset has a completed load newer than the last copied.
The newest load copied is kept per table in the pipeline's state (dlt keeps it with the files, so
it survives a lost pipelines folder); it moves in the same load package as the rows, so a failed
copy is finished by the next run, not repeated.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa

from dlt_pipelines.sql import identifier
from recomart_core import env
from recomart_core import schema as s
from recomart_core.config import Config

log = logging.getLogger("ingestion")

LAKE_DATASETS = (s.RAW_INTERACTIONS_DATASET, s.RAW_CATALOG_DATASET)
PIPELINE_PREFIX = "lake_"
LOAD_ID = "_dlt_load_id"
DLT_TABLE_PREFIX = "_dlt_"  # dlt's own tables (loads, versions, state): not part of the lake
# ... but for the warehouse's record of its loads, which the dbt sources read (staging's load ids
# relate to it): copied whole, under a name of its own, since the lake pipeline's own _dlt_loads
# folder is beside it ({warehouse table: lake folder}; macros/lake.sql registers it by its name).
WAREHOUSE_LOADS = "_dlt_loads"
LAKE_NAMES = {WAREHOUSE_LOADS: "ingest_loads"}
COPIED_KEY = "copied_through_load"  # resource state: the newest warehouse load in the lake
BATCH_ROWS = 100_000  # rows per Arrow record batch read from DuckDB
APPEND = "append"

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


def column_sql(name: str, data_type: str) -> str:
    """The select-list entry of a column: cast to SPARK_SAFE_TYPES' type when Spark cannot read
    its DuckDB type, else the column as it is."""
    target = SPARK_SAFE_TYPES.get(data_type.upper())
    return (
        f"cast({identifier(name)} as {target}) as {identifier(name)}"
        if target
        else identifier(name)
    )


def lake_bucket_url(cfg: Config) -> str:
    """Where the lake is: `[destination.filesystem] bucket_url` of dlt's config when set (object
    storage on a cluster), else [paths] lake as an absolute local path."""
    env.prepare()
    configured = dlt.config.get("destination.filesystem.bucket_url", str)
    return configured or str(cfg.paths.lake.resolve())


def raw_tables(
    con: duckdb.DuckDBPyConnection, dataset: str
) -> dict[str, tuple[list[str], str, bool]]:
    """The tables of `dataset` in the warehouse but dlt's own (WAREHOUSE_LOADS included):
    {table: (select list, write disposition in dlt's stored schema, whether it has a
    _dlt_load_id column)}."""
    columns = con.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = ? and table_catalog = current_database()"
        " and (table_name not like '\\_dlt\\_%' escape '\\' or table_name = ?)"
        " order by table_name, ordinal_position",
        [dataset, WAREHOUSE_LOADS],
    ).fetchall()
    dispositions = stored_dispositions(con, dataset)
    tables: dict[str, tuple[list[str], str, bool]] = {}
    for table, column, data_type in columns:
        select, _, has_load_id = tables.get(table, ([], "", False))
        select.append(column_sql(column, data_type))
        tables[table] = (select, dispositions.get(table, APPEND), has_load_id or column == LOAD_ID)
    return tables


def stored_dispositions(con: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, str]:
    """{table: write disposition} from the newest schema dlt stored in `dataset`'s _dlt_version
    (a nested table inherits its parent's); tables without one are `append`, dlt's default."""
    row = con.execute(
        f"select schema from {identifier(dataset)}._dlt_version order by inserted_at desc limit 1"
    ).fetchone()
    tables = json.loads(row[0])["tables"] if row else {}

    def disposition(name: str) -> str:
        table = tables.get(name, {})
        if "write_disposition" in table:
            return table["write_disposition"]
        return disposition(table["parent"]) if "parent" in table else APPEND

    return {name: disposition(name) for name in tables}


def newest_completed_load(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The newest load id of `dataset` that dlt completed (status 0 in its _dlt_loads), or None."""
    return con.execute(
        f"select max(load_id) from {identifier(dataset)}._dlt_loads where status = 0"
    ).fetchone()[0]


def batches(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> Iterator[pa.RecordBatch]:
    """The result of `sql` as Arrow record batches of up to BATCH_ROWS rows (a cursor of `con`,
    so several resources can read in turn)."""
    cursor = con.cursor()
    yield from cursor.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)


def table_resource(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    table: str,
    spec: tuple[list[str], str, bool],
    copied: str | None,
    newest: str,
) -> dlt.sources.DltResource:
    """The dlt resource copying `dataset`.`table` into the lake, for a table whose newest copied
    load (`copied`, None when never) is older than `newest`: the rows of the completed loads after
    `copied` up to `newest` (append), or the whole table (replace). Records `newest` as copied."""
    select, disposition, has_load_id = spec
    incremental = disposition == APPEND and has_load_id
    sql = f"select {', '.join(select)} from {identifier(dataset)}.{identifier(table)}"
    params: list = []
    if incremental:
        sql += (
            f" where {LOAD_ID} in (select load_id from {identifier(dataset)}._dlt_loads"
            " where status = 0 and load_id > ? and load_id <= ?)"
        )
        params = [copied or "", newest]

    name = LAKE_NAMES.get(table, table)

    @dlt.resource(name=name, write_disposition=APPEND if incremental else "replace")
    def copy() -> Iterator[pa.RecordBatch]:
        yield from batches(con, sql, params)
        dlt.current.source_state().setdefault(COPIED_KEY, {})[name] = newest

    return copy


def lake_source(con: duckdb.DuckDBPyConnection, dataset: str, newest: str) -> dlt.sources.DltSource:
    """The dlt source of `dataset`'s copy: a resource (table_resource) per table of the dataset
    whose newest copied load, in the source's state, is older than `newest`. A table that is up to
    date gets none (a `replace` resource that yields nothing would empty its table)."""

    @dlt.source(name=dataset)
    def raw_dataset() -> list[dlt.sources.DltResource]:
        copied = dlt.current.source_state().get(COPIED_KEY, {})
        resources = []
        for table, spec in raw_tables(con, dataset).items():
            done = copied.get(LAKE_NAMES.get(table, table))
            if done is None or done < newest:
                resources.append(table_resource(con, dataset, table, spec, done, newest))
        return resources

    return raw_dataset()


# .dlt/config.toml has dlt stamp Arrow rows with the load id (the ingest's pipelines want it). The
# lake keeps the warehouse's own load ids, so the copy runs with that switched off.
KEEP_LOAD_IDS = "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"


@contextmanager
def keeping_load_ids() -> Iterator[None]:
    """For the block: dlt leaves an Arrow item's _dlt_load_id as it is (the environment variable
    KEEP_LOAD_IDS, which overrides the config file), then the variable as it was."""
    before = os.environ.get(KEEP_LOAD_IDS)
    os.environ[KEEP_LOAD_IDS] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(KEEP_LOAD_IDS, None)
        else:
            os.environ[KEEP_LOAD_IDS] = before


def lake_pipeline(cfg: Config, dataset: str) -> dlt.Pipeline:
    """The dlt pipeline writing `dataset` to the lake (filesystem destination, Parquet files)."""
    env.prepare()
    cfg.paths.dlt_pipelines.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=PIPELINE_PREFIX + dataset,
        destination=dlt.destinations.filesystem(bucket_url=lake_bucket_url(cfg)),
        dataset_name=dataset,
        pipelines_dir=str(cfg.paths.dlt_pipelines),
    )


def replicate_to_lake(cfg: Config) -> dict[str, dict[str, int]]:
    """Copy what the ingest loaded into the warehouse (cfg.paths.warehouse, opened read-only) and
    the lake lacks into the lake. Returns {dataset: {table: rows written by this run}} (a table
    with nothing new is absent; a dataset not in the warehouse too)."""
    written: dict[str, dict[str, int]] = {}
    if not cfg.paths.warehouse.exists():
        return written
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        present = {
            row[0] for row in con.execute("select schema_name from duckdb_schemas()").fetchall()
        }
        for dataset in LAKE_DATASETS:
            if dataset not in present:
                continue
            newest = newest_completed_load(con, dataset)
            if newest is None:
                continue
            pipeline = lake_pipeline(cfg, dataset)
            with keeping_load_ids():
                source = lake_source(con, dataset, newest)
                info = pipeline.run(source, loader_file_format="parquet")
            rows = pipeline.last_trace.last_normalize_info.row_counts if info.loads_ids else {}
            written[dataset] = {
                table: n for table, n in rows.items() if not table.startswith(DLT_TABLE_PREFIX)
            }
            log.info(
                "Lake: %s up to load %s, %s",
                dataset,
                newest,
                ", ".join(f"{t} +{n}" for t, n in written[dataset].items()) or "nothing new",
            )
    return written


def lake_tables(lake: Path) -> dict[str, str]:
    """The tables of a local lake folder: {"<dataset>.<table>": its folder, "<dataset>/<folder>"},
    sorted: every folder of a raw dataset holding Parquet files, under the warehouse table's
    name (LAKE_NAMES: the warehouse's _dlt_loads), the lake pipeline's own `_dlt_*` left out."""
    warehouse_names = {folder: table for table, folder in LAKE_NAMES.items()}
    tables = {
        f"{dataset}.{warehouse_names.get(folder.name, folder.name)}": f"{dataset}/{folder.name}"
        for dataset in LAKE_DATASETS
        if (lake / dataset).is_dir()
        for folder in (lake / dataset).iterdir()
        if folder.is_dir()
        and not folder.name.startswith(DLT_TABLE_PREFIX)
        and any(folder.glob("*.parquet"))
    }
    return dict(sorted(tables.items()))


if __name__ == "__main__":
    from recomart_core import config

    logging.basicConfig(level=logging.INFO)
    print(json.dumps(replicate_to_lake(config.load()), indent=2))
