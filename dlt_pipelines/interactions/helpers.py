"""Parse interaction CSV files with DuckDB, whole columns at a time.

One pass per file: DuckDB reads every field as text, types it and works out why a row cannot be
typed, into an in-memory table in file order (a record's rowid is its position in the file). Each
row then ends up in exactly one place: the accepted rows in a staged Parquet file that the load
inserts from (see models.py), or the quarantine (the raw row, its file and line, and the reason).
Here a row is rejected only when it cannot be typed. Checks that need other rows or other data
(repeated events, rating range, unknown items) are dbt's job: raw keeps rows as delivered.

parse_files drives it: csv_reader.py reads the files (prepare, then execute), fields.py writes the
statements that type them; here the rows are counted, staged and quarantined.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from dlt_pipelines.interactions.csv_reader import (
    CsvFormat,
    DuplicateColumnError,
    Layout,
    MissingColumnError,
    Read,
    execute,
    prepare,
)
from dlt_pipelines.interactions.fields import BLANK, TYPED_COLUMNS, type_statements
from dlt_pipelines.interactions.settings import FAILED, LOADED
from dlt_pipelines.sql import SHOP_ID_MACRO, quote
from recomart_core import schema as s

__all__ = [
    "NATURAL_KEY",
    "CsvFormat",
    "DuplicateColumnError",
    "MissingColumnError",
    "ParsedBatch",
    "SourceFile",
    "file_sha256",
    "parse_files",
]

log = logging.getLogger("ingestion")
SPILL_DIR = ".spill"  # under the staging folder: where a parse beyond its memory limit spills
# What makes two rows the same interaction: null-safe equality of the parsed values (the stored
# columns: a time_offset is in the timestamp already)
NATURAL_KEY = s.CSV_COLUMNS
QUARANTINE_SCHEMA = pa.schema([
    pa.field("file_sha256", pa.string(), nullable=False),
    pa.field(s.SOURCE_FILE, pa.string(), nullable=False),
    pa.field(s.SOURCE_LINE, pa.int64(), nullable=False),
    pa.field(s.RAW_LINE, pa.string()),
    pa.field(s.REASON, pa.string(), nullable=False),
    pa.field(s.REASON_DETAIL, pa.string()),
])  # fmt: skip


@dataclass(frozen=True)
class SourceFile:
    """A file to load: where it was listed, the name it is recorded under, the hash of its
    content, and the copy of that content that is parsed and landed (files.new_files): the
    listed path itself is never read again."""

    path: Path
    name: str
    sha256: str
    refused: str | None = None  # why the file is not read (outside the folder, a link loop)
    copy: Path | None = None  # the bytes read, copied once (None: refused, or not read)
    size: int = 0  # of the copy

    @property
    def data(self) -> Path:
        """What is parsed: the copy (a SourceFile made by hand, without one: the path)."""
        return self.copy if self.copy is not None else self.path


@dataclass
class ParsedBatch:
    """The outcome of parsing some files: the staged Parquet file of accepted rows (None when
    there are none; `file_order` indexes `files`), the quarantined rows, and per-file counts
    (source_file, rows, accepted, quarantined, error, status)."""

    accepted: Path | None = None
    quarantined: pa.Table = field(default_factory=QUARANTINE_SCHEMA.empty_table)
    files: list[dict] = field(default_factory=list)

    @property
    def accepted_rows(self) -> int:
        return sum(f["accepted"] for f in self.files)


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


_ACCEPTED_SQL = f"""
select
    {", ".join(f'{typed} as "{name}"' for typed, name in TYPED_COLUMNS.items())},
    file_order,  -- the file's name is a constant the load adds (cheaper than a string per row)
    {s.SOURCE_LINE},
from typed_rows
where reason is null
"""

# The rows typed with a reason, each with its text as in the file (bad_lines, csv_reader.Read),
# or where records span lines, its fields re-joined with the delimiter
_QUARANTINED_SQL = f"""
select file_sha256, {s.SOURCE_FILE}, {s.SOURCE_LINE},
    coalesce(bad_lines.{s.RAW_LINE}, fields_text) as {s.RAW_LINE}, reason as {s.REASON},
    case
        when value_text is not null then 'value: ' || left(value_text, 100)
    end as {s.REASON_DETAIL}
from typed_rows left join bad_lines using (file_order, {s.SOURCE_LINE})
where reason is not null and reason <> '{BLANK}'
order by file_order, {s.SOURCE_LINE}
"""

_COUNTS_SQL = f"""
select
    file_order,
    count(*) filter (where reason is distinct from '{BLANK}') as rows,
    count(*) filter (where reason is not null and reason <> '{BLANK}') as quarantined,
from typed_rows
group by file_order
"""


class _Clock:
    """Seconds spent per step, for the debug log."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.laps[step] = self.laps.get(step, 0.0) + now - self.last
        self.last = now

    def __str__(self) -> str:
        return ", ".join(f"{step} {seconds:.2f} s" for step, seconds in self.laps.items())


def _typed_select(order: int, f: SourceFile, file_layout: Layout) -> str:
    """One file's typed rows with their file and line."""
    if file_layout.first_line is not None:  # line = position + first line
        line, source = f"typed.rowid + {file_layout.first_line}", f"typed_{order} as typed"
    else:
        line = f"lines_{order}.{s.SOURCE_LINE}"
        source = f"typed_{order} as typed positional join lines_{order}"
    return (
        f"select {order} as file_order, {', '.join(TYPED_COLUMNS)}, reason, fields_text,"
        " value_text,"
        f" {quote(f.name)} as {s.SOURCE_FILE}, {quote(f.sha256)} as file_sha256,"
        f" {line} as {s.SOURCE_LINE} from {source}"
    )


def _quarantine_rows(bad: pa.Table, f: SourceFile) -> pa.Table:
    """The quarantine rows of a file's records DuckDB could not read."""
    n = len(bad)
    return pa.table({
        "file_sha256": pa.array([f.sha256] * n, pa.string()),
        s.SOURCE_FILE: pa.array([f.name] * n, pa.string()),
        s.SOURCE_LINE: bad.column(s.SOURCE_LINE),
        s.RAW_LINE: bad.column(s.RAW_LINE),
        s.REASON: bad.column(s.REASON),
        s.REASON_DETAIL: pa.nulls(n, pa.string()),
    }).cast(QUARANTINE_SCHEMA)  # fmt: skip


def copy_accepted(con: duckdb.DuckDBPyConnection, partial: Path) -> int:
    """Write the accepted rows of typed_rows to the Parquet file `partial`; the rows written."""
    # the staged rows need no order (a table is a set); without one DuckDB writes in parallel
    con.execute("set preserve_insertion_order = false").fetchall()
    rows = con.execute(
        f"copy ({_ACCEPTED_SQL}) to {quote(str(partial))} (format parquet)"
    ).fetchall()
    return rows[0][0]


def _write_accepted(con: duckdb.DuckDBPyConnection, target: Path) -> int:
    """Write the accepted rows to `target` (Parquet, atomically: a temp name, then a rename)."""
    partial = target.with_name(target.name + ".partial")
    rows = copy_accepted(con, partial)
    os.replace(partial, target)
    return rows


def parse_files(files: list[SourceFile], fmt: CsvFormat | None, stage: Path) -> ParsedBatch:
    """Parse files into accepted rows (staged as Parquet in the folder `stage`), quarantined
    rows, and per-file counts.

    A file that lacks a required column, maps two columns onto one of ours, or cannot be read
    contributes no rows: its error is recorded in `files` and the other files still load.

    In order: the counts of each file, the files prepared to be read (csv_reader.prepare), the
    statements that type them (fields.type_statements), the reads (csv_reader.execute), then
    here the accepted rows staged and the quarantine put together.
    """
    fmt = fmt or CsvFormat()
    batch = ParsedBatch()
    clock = _Clock()
    infos = {order: _counts(f) for order, f in enumerate(files)}
    # never opened (refused: nothing of it is read, copied or quoted), or empty: not read
    todo = [(o, f.data, f.path) for o, f in enumerate(files) if infos[o]["size_bytes"]]
    # bounded memory: past the limit DuckDB spills the typed rows to disk beside the stage
    spill = stage.parent / SPILL_DIR  # DuckDB makes it (and removes it) when it spills
    stage.mkdir(parents=True, exist_ok=True)  # also where a tolerant read writes (csv_reader)
    limits = {"memory_limit": fmt.parse_memory_limit, "temp_directory": str(spill)}
    with duckdb.connect(config=limits) as con:
        con.execute("set TimeZone = 'UTC'").fetchall()
        con.execute(SHOP_ID_MACRO).fetchall()
        prepared, unread = prepare(con, todo, fmt)
        statements = type_statements(prepared, fmt)
        read, failed = execute(con, prepared, statements, fmt.header, stage)
        clock.lap("read and type")
        return _collect(con, files, infos, read, {**unread, **failed}, batch, stage, clock)


def _counts(f: SourceFile) -> dict:
    """A file's row of per-file counts before it is read."""
    size = 0 if f.refused else f.size if f.copy else f.data.stat().st_size
    info = {
        "source_file": f.name, "sha256": f.sha256, "size_bytes": size, "rows": 0,
        "accepted": 0, "quarantined": 0, "error": None, "status": LOADED,
    }  # fmt: skip
    if f.refused:
        info.update(error=f.refused, status=FAILED)
    return info


def _collect(
    con: duckdb.DuckDBPyConnection,
    files: list[SourceFile],
    infos: dict[int, dict],
    read: dict[int, Read],
    errors: dict[int, str],
    batch: ParsedBatch,
    stage: Path,
    clock: _Clock,
) -> ParsedBatch:
    """The batch of the files read: per-file counts, the accepted rows staged in `stage`, the
    quarantined rows (those DuckDB could not read, then those typed with a reason)."""
    for order, error in errors.items():
        infos[order].update(error=error, status=FAILED)
    rejected = []  # records DuckDB could not read, per file
    for order, done in read.items():
        if done.rejected is not None and len(done.rejected):
            rejected.append(_quarantine_rows(done.rejected, files[order]))
            infos[order].update(rows=len(done.rejected), quarantined=len(done.rejected))
    batch.files = list(infos.values())
    if not read:
        log.debug("parsed %d file(s): %s", len(files), clock)
        return batch
    union = " union all ".join(_typed_select(o, files[o], done.layout) for o, done in read.items())
    con.execute(f"create temp view typed_rows as {union}").fetchall()
    for order, rows, quarantined in con.execute(_COUNTS_SQL).fetchall():
        info = infos[order]  # the records DuckDB rejected are counted already
        info.update(rows=info["rows"] + rows, quarantined=info["quarantined"] + quarantined)
        info["accepted"] = info["rows"] - info["quarantined"]
    lines = [done.bad_lines for done in read.values() if done.bad_lines is not None]
    schema = pa.schema([("file_order", pa.int64()), (s.SOURCE_LINE, pa.int64()),
                        (s.RAW_LINE, pa.string())])  # fmt: skip
    con.register("bad_lines", pa.concat_tables(lines) if lines else schema.empty_table())
    typed = con.sql(_QUARANTINED_SQL).to_arrow_table().cast(QUARANTINE_SCHEMA)
    batch.quarantined = pa.concat_tables([*rejected, typed])
    clock.lap("quarantine")
    if batch.accepted_rows:
        accepted = stage / "accepted.parquet"
        written = _write_accepted(con, accepted)
        if written != batch.accepted_rows:  # the counts must add up, or nothing loads
            raise RuntimeError(f"wrote {written} accepted rows, counted {batch.accepted_rows}")
        batch.accepted = accepted
        clock.lap("stage accepted rows")
    log.debug("parsed %d file(s): %s", len(files), clock)
    return batch
