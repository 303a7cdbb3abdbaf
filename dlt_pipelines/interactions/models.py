"""The SQL models through which dlt loads the staged files: one INSERT ... SELECT per table, run by
dlt inside the warehouse; and the small staged files they read besides the parse's accepted rows
(the quarantine, the per-file audit).

Each model reads staged Parquet and inserts only rows whose key is not in its table yet. That makes
a load exactly-once without a staging dataset and a MERGE: a job that dlt runs again after a crash
(it committed, but was not yet marked done) inserts nothing twice.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from dlt.dataset.relation import Relation

from dlt_pipelines.interactions.helpers import NATURAL_KEY, ParsedBatch
from dlt_pipelines.interactions.settings import DATASET, FILES_TABLE
from dlt_pipelines.sql import quote
from recomart_core import schema as s

# Column types as dlt creates the tables (a model carries no types of its own).
INTERACTIONS_COLUMNS = {
    s.CSV_USER: {"data_type": "text", "nullable": False},
    s.CSV_ITEM: {"data_type": "text", "nullable": False},
    s.CSV_RATING: {"data_type": "double", "nullable": True},
    s.CSV_TIMESTAMP: {"data_type": "timestamp", "timezone": False, "nullable": False},
    s.CSV_EVENT: {"data_type": "text", "nullable": True},
    s.CSV_QUANTITY: {"data_type": "double", "nullable": True},
    s.CSV_UNIT_PRICE: {"data_type": "double", "nullable": True},
    s.CSV_VALUE: {"data_type": "double", "nullable": True},
    s.CSV_TRANSACTION: {"data_type": "text", "nullable": True},
    s.SOURCE_FILE: {"data_type": "text", "nullable": False},
    s.SOURCE_LINE: {"data_type": "bigint", "nullable": False},
}
QUARANTINE_COLUMNS = {
    "file_sha256": {"data_type": "text", "nullable": False},
    s.SOURCE_FILE: {"data_type": "text", "nullable": False},
    s.SOURCE_LINE: {"data_type": "bigint", "nullable": False},
    s.RAW_LINE: {"data_type": "text", "nullable": True},
    s.REASON: {"data_type": "text", "nullable": False},
    s.REASON_DETAIL: {"data_type": "text", "nullable": True},
}
FILES_COLUMNS = {
    s.SOURCE_FILE: {"data_type": "text", "nullable": False},
    "sha256": {"data_type": "text", "nullable": False},
    "size_bytes": {"data_type": "bigint", "nullable": False},
    "rows": {"data_type": "bigint", "nullable": False},
    "accepted": {"data_type": "bigint", "nullable": False},
    "quarantined": {"data_type": "bigint", "nullable": False},
    "error": {"data_type": "text", "nullable": True},
    "landed_as": {"data_type": "text", "nullable": True},
    "status": {"data_type": "text", "nullable": True},  # null in rows from before the column
}

# The staged source_files rows (the parse's per-file counts, the failed paths settled)
FILES_SCHEMA = pa.schema([
    pa.field(s.SOURCE_FILE, pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("size_bytes", pa.int64(), nullable=False),
    pa.field("rows", pa.int64(), nullable=False),
    pa.field("accepted", pa.int64(), nullable=False),
    pa.field("quarantined", pa.int64(), nullable=False),
    pa.field("error", pa.string()),
    pa.field("landed_as", pa.string()),
    pa.field("status", pa.string()),
])  # fmt: skip


class SqlModel(Relation):
    """A SELECT for dlt to insert from, given as text in DuckDB's dialect.

    dlt takes models as dataset relations; this one needs no dataset (no destination client is
    built during extraction), since the query is executed as written.
    """

    destination_dialect = "duckdb"  # (a property in dlt's Relation; a constant here)

    def __init__(self, query: str) -> None:
        super().__init__(dataset=None, query=query, query_dialect="duckdb", _execute_raw_query=True)


def _table(name: str) -> str:
    return f'"{DATASET}"."{name}"'


def _not_loaded(table: str, keys: list[str]) -> str:
    """Rows of `staged` whose key (null-safe) is not in `table` yet."""
    matches = " and ".join(f'loaded."{k}" is not distinct from staged."{k}"' for k in keys)
    return f"not exists (select 1 from {_table(table)} as loaded where {matches})"


def interactions_model(accepted: Path, file_names: list[str]) -> SqlModel:
    """The staged accepted rows whose natural key is not in the raw table yet; the staged file
    has the index of each row's file in `file_names`, not the name."""
    names = " ".join(f"when {i} then {quote(name)}" for i, name in enumerate(file_names))
    return staged_rows_model(
        s.RAW_INTERACTIONS_TABLE,
        INTERACTIONS_COLUMNS,
        accepted,
        list(NATURAL_KEY),
        {s.SOURCE_FILE: f"case staged.file_order {names} end"},
    )


def staged_rows_model(
    table: str, columns: dict, path: Path, keys: list[str], computed: dict | None = None
) -> SqlModel:
    """The rows of a staged file whose key is not in `table` yet; a column in `computed` is
    that SQL expression instead of the staged column."""
    expressions = {c: f'staged."{c}"' for c in columns} | (computed or {})
    names = ", ".join(f'{expressions[c]} as "{c}"' for c in columns)
    return SqlModel(
        f"select {names} from read_parquet({quote(str(path))}) as staged"
        f" where {_not_loaded(table, keys)}"
    )


def quarantine_model(path: Path) -> SqlModel:
    return staged_rows_model(
        s.RAW_QUARANTINE_TABLE, QUARANTINE_COLUMNS, path, ["file_sha256", s.SOURCE_LINE]
    )


def files_model(path: Path) -> SqlModel:
    """One row per file and attempt, keyed by path, content and load id: a file that failed is
    tried again by later loads, and each attempt is recorded (so is a failed path settled, see
    settings.py). The staged file carries the load id."""
    return staged_rows_model(
        FILES_TABLE, FILES_COLUMNS, path, [s.SOURCE_FILE, "sha256", "_dlt_load_id"]
    )


def write_parquet(table: pa.Table, path: Path) -> Path:
    """Write a small table (the quarantine, the file audit) for a model to insert from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def staged_models(
    batch: ParsedBatch, settled: list[dict], stage: Path
) -> tuple[SqlModel | None, SqlModel, SqlModel | None]:
    """The models of a parsed batch staged in the folder `stage` (named by the load id): of its
    accepted rows (None when there are none), of its quarantined rows (written to the stage; a
    model even when empty, so the table exists from the first load on: the quality contracts
    count its rows, and dlt creates a table only for data it is given), and of the source_files
    rows of its files and the `settled` failed paths (None when there are neither)."""
    accepted = None
    if batch.accepted is not None:
        accepted = interactions_model(batch.accepted, [f["source_file"] for f in batch.files])
    quarantine = quarantine_model(write_parquet(batch.quarantined, stage / "quarantine.parquet"))
    audit = None
    if batch.files or settled:
        rows = [{**f, "_dlt_load_id": stage.name} for f in [*batch.files, *settled]]
        schema = FILES_SCHEMA.append(pa.field("_dlt_load_id", pa.string()))
        table = pa.Table.from_pylist(rows, schema=schema)
        audit = files_model(write_parquet(table, stage / "files.parquet"))
    return accepted, quarantine, audit
