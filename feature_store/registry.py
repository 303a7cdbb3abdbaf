"""The store's own half of the registry: one DuckDB file beside the warehouse, never the warehouse.

Feature sets computed outside dbt are registered (metadata only) and saved (versioned tables) in
the feature store file (paths.feature_store, default `feature_store.duckdb` beside the warehouse):
tables `"<name>__<version>"` and the metadata table `registry` (one row per name and version).
Writing it never touches the live warehouse, so the quality gate's blue-green publish
(recomart_core.warehouse) is never refused because of a save. Readers open the warehouse
read-only and ATTACH this file read-only as catalog STORE_CATALOG (`reading`), so one SQL query
sees the marts and the saved sets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from feature_store.errors import FeatureStoreError, check_name, check_version, quote
from feature_store.sets import SAVED, Column, FeatureSet
from recomart_core.engine import spark_tables

STORE_CATALOG = "feature_store"  # the attach name of the feature store file in a reading query
STORE_SCHEMA = "main"
REGISTRY_TABLE = "registry"

REGISTRY_DDL = f"""
create table if not exists {STORE_SCHEMA}.{REGISTRY_TABLE} (
    name varchar not null,
    version varchar not null,
    description varchar,
    entity varchar,
    join_keys varchar not null,      -- JSON list
    owner varchar,
    tags varchar not null,           -- JSON list
    upstream varchar not null,       -- JSON list of feature set or dbt node names
    table_name varchar,              -- the saved table; null for metadata only
    columns varchar,                 -- JSON list of {{"name", "data_type"}}
    created_at timestamp not null,
    primary key (name, version)
)
"""


def table_name(name: str, version: str) -> str:
    """The table of a saved version: '<name>__<version>' with '.' and '-' as '_'."""
    return f"{name}__{re.sub(r'[.-]', '_', version)}"


def saved_relation(table: str) -> str:
    """The quoted three-part name of a saved table in a `reading` connection."""
    return quote(STORE_CATALOG, STORE_SCHEMA, table)


@contextmanager
def reading(
    warehouse: Path | None, store_file: Path | None, spark_warehouse: Path | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse (in memory when there is none) with the feature
    store file attached read-only as STORE_CATALOG when it exists; closed on exit.
    spark_warehouse (engine = "spark"): Spark's warehouse folder (recomart_core.engine
    .spark_warehouse): each table dbt built there is a view <schema>.<table> in the in-memory
    connection (spark_views), the warehouse left out."""
    target = str(warehouse) if warehouse is not None and warehouse.exists() else ":memory:"
    if spark_warehouse is not None:
        target = ":memory:"
    con = duckdb.connect(target, read_only=target != ":memory:")
    try:
        if spark_warehouse is not None:
            spark_views(con, spark_warehouse)
        if store_file is not None and store_file.exists():
            con.execute(f"attach '{_literal(store_file)}' as {STORE_CATALOG} (read_only)")
        yield con
    finally:
        con.close()


def spark_views(con: duckdb.DuckDBPyConnection, spark_warehouse: Path) -> dict[str, Path]:
    """In con (in memory; its TimeZone set to UTC): a view <schema>.<table> over the Parquet
    files of each of recomart_core.engine.spark_tables(spark_warehouse), Hive partition
    folders read back as columns; Spark's timestamps (instants, TIMESTAMP WITH TIME ZONE to
    DuckDB) as naive UTC TIMESTAMPs, the type the DuckDB engine's marts have. Returns the
    folders."""
    con.execute("set TimeZone = 'UTC'")
    folders = spark_tables(spark_warehouse)
    for name, folder in folders.items():
        schema, table = name.split(".")
        files = f"read_parquet('{_literal(folder)}/**/*.parquet', hive_partitioning = true)"
        columns = con.execute(f"describe select * from {files}").fetchall()
        select = ", ".join(
            f"{_column(column)}::timestamp as {_column(column)}"
            if kind == "TIMESTAMP WITH TIME ZONE"
            else _column(column)
            for column, kind, *_ in columns
        )
        con.execute(f"create schema if not exists {quote(schema)}")
        con.execute(
            f"create or replace view {quote(schema, table)} as select {select} from {files}"
        )
    return folders


def _check_table_free(con: duckdb.DuckDBPyConnection, name: str, version: str, table: str) -> None:
    """FeatureStoreError when another version (or an unregistered table) has table's name, in
    any case: DuckDB's table names are case-insensitive, so V1 and v1 would be one table."""
    taken = con.execute(
        f"select version from {STORE_SCHEMA}.{REGISTRY_TABLE}"
        " where lower(table_name) = lower(?) and version <> ?",
        [table, version],
    ).fetchall()
    orphan = con.execute(
        "select count(*) from information_schema.tables"
        " where table_schema = ? and lower(table_name) = lower(?)",
        [STORE_SCHEMA, table],
    ).fetchone()[0]
    if taken or orphan:
        other = f"version {taken[0][0]!r}" if taken else "an unregistered table"
        raise FeatureStoreError(
            f"version {version!r} of {name} would be stored as table {table}, which {other} of"
            f" {name} already uses ('.' and '-' become '_'; versions are case-insensitive):"
            " use another version"
        )


def _text(value: object) -> str | None:
    """A nullable text column's value: None for NULL (None or NaN, as pandas reads it)."""
    return value if isinstance(value, str) else None


def _column(name: str) -> str:
    """A column name as a quoted identifier (any text: the Parquet file's own names)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")


class MetadataStore:
    """The feature store file: registrations and saved versions of the sets computed outside
    dbt. `dbt_names` (the dbt-built sets) are refused: their metadata lives in the dbt YAML."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- reading ---------------------------------------------------------------------------------

    def rows(self) -> pd.DataFrame:
        """The registry table, oldest first per name; empty before anything was registered."""
        if not self.path.exists():
            return pd.DataFrame()
        with duckdb.connect(str(self.path), read_only=True) as con:
            exists = con.execute(
                "select count(*) from information_schema.tables"
                " where table_schema = ? and table_name = ?",
                [STORE_SCHEMA, REGISTRY_TABLE],
            ).fetchall()[0][0]
            if not exists:
                return pd.DataFrame()
            return con.sql(
                f"select * from {STORE_SCHEMA}.{REGISTRY_TABLE} order by name, created_at, version"
            ).df()

    def feature_sets(self) -> dict[str, FeatureSet]:
        """{name: FeatureSet} of every registered name (its latest metadata, its saved versions,
        the creation time of each version in extra["created_at"])."""
        rows = self.rows()
        sets: dict[str, FeatureSet] = {}
        for name, versions in rows.groupby("name", sort=True) if len(rows) else []:
            latest = versions.iloc[-1]
            saved = versions[versions["table_name"].notna()]
            # the latest row with columns: a metadata-only row has none (NULL, NaN in pandas)
            described = versions[versions["columns"].notna()]
            columns = json.loads(described.iloc[-1]["columns"]) if len(described) else []
            sets[name] = FeatureSet(
                name=name,
                description=_text(latest["description"]) or "",
                entity=_text(latest["entity"]),
                join_keys=tuple(json.loads(latest["join_keys"])),
                columns=tuple(Column(c["name"], c["data_type"]) for c in columns),
                owner=_text(latest["owner"]),
                tags=tuple(json.loads(latest["tags"])),
                source=SAVED,
                relation=(
                    f"{STORE_CATALOG}.{STORE_SCHEMA}.{saved.iloc[-1]['table_name']}"
                    if len(saved)
                    else None
                ),
                versions=tuple(saved["version"]),
                upstream=tuple(json.loads(latest["upstream"])),
                extra={
                    "created_at": {
                        v: t.isoformat()
                        for v, t in zip(versions["version"], versions["created_at"], strict=True)
                    }
                },
            )
        return sets

    # -- writing (the feature store file only) ---------------------------------------------------

    def _write(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path))
        con.execute(REGISTRY_DDL)
        return con

    def register(
        self,
        name: str,
        description: str,
        join_keys: Sequence[str],
        entity: str | None,
        owner: str | None,
        tags: Iterable[str],
        upstream: Iterable[str],
        version: str,
        dbt_names: Iterable[str] = (),
        table: str | None = None,
        columns: list[dict] | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        """Insert one registry row, after checking every name. A saved version is immutable:
        registering or saving it again is refused; a metadata-only row may be replaced (new
        metadata) or filled by saving that version."""
        check_name(name)
        check_version(version)
        if name in set(dbt_names):
            raise FeatureStoreError(
                f"{name} is built by dbt: describe it in dbt_project/models (its YAML), not here"
            )
        keys = [join_keys] if isinstance(join_keys, str) else list(join_keys)
        if not keys:
            raise FeatureStoreError("a feature set needs at least one join key")
        for key in keys:
            check_name(key, "join key")
        upstream = list(upstream)
        for parent in upstream:
            check_name(parent, "upstream name")
        row = [
            name, version, description, entity, json.dumps(keys), owner,
            json.dumps(list(tags)), json.dumps(upstream), table,
            json.dumps(columns) if columns is not None else None,
            datetime.now(UTC).replace(tzinfo=None),
        ]  # fmt: skip
        own = con is None
        con = con or self._write()
        try:
            existing = con.execute(
                f"select table_name from {STORE_SCHEMA}.{REGISTRY_TABLE}"
                " where name = ? and version = ?",
                [name, version],
            ).fetchall()
            if existing and existing[0][0] is not None:
                raise FeatureStoreError(
                    f"version {version!r} of {name} is saved; versions are immutable: use a new"
                    " version"
                )
            con.execute(
                f"insert or replace into {STORE_SCHEMA}.{REGISTRY_TABLE}"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        finally:
            if own:
                con.close()

    def save(
        self,
        df: pd.DataFrame,
        name: str,
        version: str,
        keys: list[str],
        metadata: dict,
        dbt_names: Iterable[str] = (),
    ) -> None:
        """Write df as table `<name>__<version>` and its registry row in one transaction.

        metadata: description, entity, owner, tags, upstream of the registry row.
        """
        table = table_name(name, version)
        con = self._write()
        try:
            _check_table_free(con, name, version, table)
        except FeatureStoreError:
            con.close()
            raise
        try:
            con.execute("begin transaction")
            con.register("incoming_features", df)
            con.execute(
                f"create table {quote(STORE_SCHEMA, table)} as select * from incoming_features"
            )
            con.unregister("incoming_features")
            columns = [
                {"name": c, "data_type": t}
                for c, t in con.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_schema = ? and table_name = ? order by ordinal_position",
                    [STORE_SCHEMA, table],
                ).fetchall()
            ]
            self.register(
                name, metadata["description"], keys, metadata["entity"], metadata["owner"],
                metadata["tags"], metadata["upstream"], version, dbt_names, table, columns, con,
            )  # fmt: skip
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            con.close()
