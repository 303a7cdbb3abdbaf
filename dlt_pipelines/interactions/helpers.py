"""Parse interaction CSV files with DuckDB, whole columns at a time.

One pass per file: DuckDB reads every field as text, types it and works out why a row cannot be
typed, into an in-memory table in file order (a record's rowid is its position in the file). Each
row then ends up in exactly one place: the accepted rows in a staged Parquet file that the load
inserts from (see models.py), or the quarantine (the raw row, its file and line, and the reason).
Here a row is rejected only when it cannot be typed. Checks that need other rows or other data
(repeated events, rating range, unknown items) are dbt's job: raw keeps rows as delivered.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dlt_pipelines.interactions import fields
from dlt_pipelines.interactions.crash import crash_point
from dlt_pipelines.interactions.csv_reader import (
    CsvFormat,
    DuplicateColumnError,
    Layout,
    Lines,
    MissingColumnError,
    Rejected,
    Tolerant,
    UnreadableFileError,
    create_from_csv,
    layout,
    read_sql,
    register_numbers,
)
from dlt_pipelines.interactions.settings import FAILED, LOADED
from dlt_pipelines.sql import SHOP_ID_MACRO, quote
from recomart_core import schema as s
from recomart_core.settings import AUTO

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
BLANK = "blank"  # reason of a record with no data at all (a whitespace-only line): not a row
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


# Typing and reasons over a file's records, in file order. A rating, quantity, price or value may
# be missing, not unparseable. Reasons, and the record's fields re-joined, are worked out only for
# rows that failed to type. `tf` is the timestamp as the file writes it, `t` the event time (tf
# plus the time_offset in microseconds, `o`, when the file has that column).
_TYPE_SQL = """
create or replace temp table {typed} as
with fielded as (
    select
        *,
        shop_id("{user}") as u,
        shop_id("{item}") as i,
        try_cast("{rating}" as double) as r,
        coalesce({timestamp_parsers}) as tf,
        {offset} as o,
        try_cast("{quantity}" as double) as q,
        try_cast("{unit_price}" as double) as p,
        try_cast("{value}" as double) as v,
        shop_id("{transaction}") as x,
    from {read}
),
typed as (
    select *, {event_time} as t from fielded
),
reasoned as (
    select
        *,
        {event} as e,
        case
            when {typed_fine} then null
            when {blank} then '{BLANK}'
            when u is null then '{missing_user}'
            when length(u) > {max_id} or regexp_matches(u, '{id_control}') then 'unparseable {user}'
            when i is null then 'missing {item}'
            when length(i) > {max_id} or regexp_matches(i, '{id_control}') then 'unparseable {item}'
            when nullif(trim("{timestamp}"), '') is null then 'missing {timestamp}'
            when tf is null then 'unparseable {timestamp}'
            {offset_reasons}
            when not ({in_range}) then '{out_of_range}'
            when r is null and nullif(trim("{rating}"), '') is not null then 'unparseable {rating}'
            when q is null and nullif(trim("{quantity}"), '') is not null
                then 'unparseable {quantity}'
            when p is null and nullif(trim("{unit_price}"), '') is not null
                then 'unparseable {unit_price}'
            when v is null and nullif(trim("{value}"), '') is not null then 'unparseable {value}'
            when length(x) > {max_id} then 'unparseable {transaction}'
            {quarantined_returns}
        end as reason,
    from typed
)
select
    u, i, r, t, e, q, p, v, x, reason,
    case when reason is not null then concat_ws($delim, {fields}) end as fields_text,
    case
        when reason = '{out_of_range}' then "{timestamp}"
        when reason not like 'unparseable %' then null
        when reason like '%{user}' then "{user}"
        when reason like '%{item}' then "{item}"
        when reason like '%{timestamp}' then "{timestamp}"
        when reason like '%{time_offset}' then "{time_offset}"
        when reason like '%{rating}' then "{rating}"
        when reason like '%{quantity}' then "{quantity}"
        when reason like '%{unit_price}' then "{unit_price}"
        when reason like '%{value}' then "{value}"
        when reason like '%{transaction}' then "{transaction}"
    end as value_text,
from reasoned
"""
RETURN_REASON = "return or cancellation"
OUT_OF_RANGE = f"{s.CSV_TIMESTAMP} out of range"  # a date, but not of this era (fields.py)
GUEST_REASON = "guest (no user_id)"  # a row without a user when missing_user = "guest"
# the typed columns of a row, as the accepted rows are staged (and the raw table named)
TYPED_COLUMNS = {
    "u": s.CSV_USER, "i": s.CSV_ITEM, "r": s.CSV_RATING, "t": s.CSV_TIMESTAMP, "e": s.CSV_EVENT,
    "q": s.CSV_QUANTITY, "p": s.CSV_UNIT_PRICE, "v": s.CSV_VALUE, "x": s.CSV_TRANSACTION,
}  # fmt: skip


# Why a row whose timestamp parsed has no event time, when the file has a time_offset column
_OFFSET_REASONS = f"""
            when nullif(trim("{s.CSV_TIME_OFFSET}"), '') is null then 'missing {s.CSV_TIME_OFFSET}'
            when t is null then 'unparseable {s.CSV_TIME_OFFSET}'
"""
# The optional numbers among the typed columns: each must type when the file gives it text.
_OPTIONAL_NUMBERS = {typed: TYPED_COLUMNS[typed] for typed in "rqpv"}


def _typed_fine(present: list[str], quarantined: str | None) -> str:
    """The cheap test that a row typed: checked first, on every row, so the reasons (and the
    blank-line test over every field) are worked out only for the rows that fail it. Only the
    optional columns the file has are tested."""
    tests = ["u is not null", "i is not null", "t is not null",
             f"length(u) <= {s.ID_MAX_LENGTH}", f"length(i) <= {s.ID_MAX_LENGTH}",
             f"not regexp_matches(u || i, '{s.ID_CONTROL}')", fields.IN_RANGE]  # fmt: skip
    tests += [
        f"({typed} is not null or nullif(trim(\"{name}\"), '') is null)"
        for typed, name in _OPTIONAL_NUMBERS.items()
        if name in present
    ]
    if s.CSV_TRANSACTION in present:
        tests.append(f"coalesce(length(x) <= {s.ID_MAX_LENGTH}, true)")
    if quarantined:
        tests.append(f"not ({quarantined})")
    return " and ".join(tests)


def type_sql(
    typed: str, read: str, own: list[str], present: list[str], fmt: CsvFormat, epoch_first: bool
) -> str:
    """The statement that reads a file (`read`, its own fields `own`, our columns `present`) and
    types it into `typed`."""
    rule = fields.return_rule(fmt)
    quarantined = rule if fmt.returns.action == "quarantine" else None  # returns kept out here
    offset = s.CSV_TIME_OFFSET in present
    return _TYPE_SQL.format(
        typed=typed,
        read=read,
        user=s.CSV_USER, item=s.CSV_ITEM, rating=s.CSV_RATING, timestamp=s.CSV_TIMESTAMP,
        missing_user=GUEST_REASON if fmt.missing_user == "guest" else f"missing {s.CSV_USER}",
        quantity=s.CSV_QUANTITY, unit_price=s.CSV_UNIT_PRICE, value=s.CSV_VALUE,
        transaction=s.CSV_TRANSACTION,
        timestamp_parsers=", ".join(fields.timestamp_parsers(fmt, epoch_first)),
        time_offset=s.CSV_TIME_OFFSET,
        offset=fields.offset_microseconds(fmt) if offset else "null::bigint",
        event_time=fields.EVENT_TIME_WITH_OFFSET if offset else "tf",
        offset_reasons=_OFFSET_REASONS if offset else "",
        event=fields.event_sql(fmt),
        typed_fine=_typed_fine(present, quarantined),
        blank=" and ".join(f"nullif(trim({c}), '') is null" for c in own) or "false",
        BLANK=BLANK,
        max_id=s.ID_MAX_LENGTH,
        id_control=s.ID_CONTROL,
        in_range=fields.IN_RANGE,
        out_of_range=OUT_OF_RANGE,
        quarantined_returns=f"when {quarantined} then '{RETURN_REASON}'" if quarantined else "",
        fields=", ".join(f"coalesce({c}, '')" for c in own),
    )  # fmt: skip


_ACCEPTED_SQL = f"""
select
    {", ".join(f'{typed} as "{name}"' for typed, name in TYPED_COLUMNS.items())},
    file_order,  -- the file's name is a constant the load adds (cheaper than a string per row)
    {s.SOURCE_LINE},
from typed_rows
where reason is null
"""

_QUARANTINED_SQL = f"""
select file_sha256, {s.SOURCE_FILE}, {s.SOURCE_LINE}, reason as {s.REASON},
    case
        when value_text is not null then 'value: ' || left(value_text, 100)
    end as {s.REASON_DETAIL}, file_order, fields_text
from typed_rows
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


def _epoch_first(con: duckdb.DuckDBPyConnection, source: str, params: dict) -> bool:
    """Whether the file's first rows hold more epoch numbers than ISO texts (MovieLens): then the
    epoch parser goes first (timestamp_format = auto)."""
    sample = (
        f'select count(try_cast("{s.CSV_TIMESTAMP}" as double)),'
        f' count(try_strptime("{s.CSV_TIMESTAMP}", {quote(fields.ISO_FORMAT)}))'
        f" from (select * from {source.replace('{parallel}', '')} limit 1000)"
    )
    try:
        epochs, isos = con.execute(sample, params).fetchall()[0]
    except duckdb.Error:  # the full read reports what is wrong with the file
        return False
    return epochs > isos


def _read_file(
    con: duckdb.DuckDBPyConnection, order: int, f: SourceFile, fmt: CsvFormat, scratch: Path
) -> tuple[Layout, pa.Table | None]:
    """Read and type one file (its copy, f.data) into temp table typed_<order>; map its records
    to the file's lines. The records DuckDB cannot read (more fields than the header, a quote
    left open) are returned (source_line, raw_line, reason), when there are any; `scratch` is
    where a copy without unbalanced lines may be written meanwhile.

    Raises MissingColumnError, DuplicateColumnError or UnreadableFileError; then nothing is
    read.
    """
    lines = Lines.of(f.data, fmt.encoding)
    source, params, own, present = read_sql(f.data, fmt, lines.longest, shown=f.path)
    epoch_first = AUTO in fmt.formats and _epoch_first(con, source, params)
    statement = type_sql(f"typed_{order}", source, own, present, fmt, epoch_first)
    tolerant = Tolerant(lines, fmt.header, scratch, f"rejects_{order}")
    try:
        rejected: Rejected | None = create_from_csv(
            con, f.data, statement, params, f.path, tolerant
        )
        records = con.execute(f"select count(*) from typed_{order}").fetchall()[0][0]
        file_layout = layout(lines, records, fmt.header, rejected, f.path)
    finally:
        scratch.unlink(missing_ok=True)
    if file_layout.numbers is not None:  # lines and records differ (blank lines)
        register_numbers(con, file_layout, f"lines_{order}")
    return file_layout, rejected.table if rejected is not None else None


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


def _with_raw_lines(quarantined: pa.Table, layouts: dict[int, Layout]) -> pa.Table:
    """Add each quarantined row's text as it is in its file (only these lines are read). Where
    records span lines, the record's fields re-joined with the delimiter stand in for it."""
    order = quarantined.column("file_order").to_numpy()
    numbers = quarantined.column(s.SOURCE_LINE).to_numpy()
    fields = quarantined.column("fields_text").to_pylist()
    text: list[str | None] = [None] * len(numbers)
    for file_order in np.unique(order):
        file_layout = layouts[int(file_order)]
        rows = np.flatnonzero(order == file_order)
        if file_layout.spans_lines:
            found = [fields[row] for row in rows]
        else:
            found = file_layout.lines.text(numbers[rows])
        for row, line_text in zip(rows, found, strict=True):
            text[row] = line_text
    table = quarantined.drop_columns(["file_order", "fields_text"])
    return table.add_column(3, s.RAW_LINE, pa.array(text, pa.string())).cast(QUARANTINE_SCHEMA)


def _write_accepted(con: duckdb.DuckDBPyConnection, target: Path) -> int:
    """Write the accepted rows to `target` (Parquet, atomically: a temp name, then a rename)."""
    partial = target.with_name(target.name + ".partial")
    # the staged rows need no order (a table is a set); without one DuckDB writes in parallel
    con.execute("set preserve_insertion_order = false").fetchall()
    rows = con.execute(
        f"copy ({_ACCEPTED_SQL}) to {quote(str(partial))} (format parquet)"
    ).fetchall()
    crash_point("parsing")  # a test hook (crash.py)
    os.replace(partial, target)
    return rows[0][0]


def parse_files(files: list[SourceFile], fmt: CsvFormat | None, stage: Path) -> ParsedBatch:
    """Parse files into accepted rows (staged as Parquet in the folder `stage`), quarantined
    rows, and per-file counts.

    A file that lacks a required column, maps two columns onto one of ours, or cannot be read
    contributes no rows: its error is recorded in `files` and the other files still load.
    """
    fmt = fmt or CsvFormat()
    batch = ParsedBatch()
    clock = _Clock()
    infos: dict[int, dict] = {}
    parsed: dict[int, tuple[SourceFile, Layout]] = {}
    rejected: list[pa.Table] = []  # records DuckDB could not read, per file
    # bounded memory: past the limit DuckDB spills the typed rows to disk beside the stage
    spill = stage.parent / SPILL_DIR  # DuckDB makes it (and removes it) when it spills
    stage.mkdir(parents=True, exist_ok=True)  # also where a tolerant read writes (csv_reader)
    limits = {"memory_limit": fmt.parse_memory_limit, "temp_directory": str(spill)}
    with duckdb.connect(config=limits) as con:
        con.execute("set TimeZone = 'UTC'").fetchall()
        con.execute(SHOP_ID_MACRO).fetchall()
        for order, f in enumerate(files):
            infos[order] = {
                "source_file": f.name,
                "sha256": f.sha256,
                "size_bytes": 0 if f.refused else f.size if f.copy else f.data.stat().st_size,
                "rows": 0,
                "accepted": 0,
                "quarantined": 0,
                "error": None,
                "status": LOADED,
            }
            if f.refused:  # never opened: nothing of it is read, copied or quoted
                infos[order].update(error=f.refused, status=FAILED, size_bytes=0)
                continue
            if not infos[order]["size_bytes"]:
                continue
            try:
                file_layout, bad = _read_file(
                    con, order, f, fmt, stage / f".unbalanced_{order}.csv"
                )
            except (MissingColumnError, DuplicateColumnError, UnreadableFileError) as exc:
                infos[order].update(error=str(exc).splitlines()[0], status=FAILED)
                continue
            parsed[order] = (f, file_layout)
            if bad is not None and len(bad):
                rejected.append(_quarantine_rows(bad, f))
                infos[order].update(rows=len(bad), quarantined=len(bad))
            clock.lap("read and type")
        batch.files = list(infos.values())
        if not parsed:
            return batch
        union = " union all ".join(_typed_select(o, f, lay) for o, (f, lay) in parsed.items())
        con.execute(f"create temp view typed_rows as {union}").fetchall()
        for order, rows, quarantined in con.execute(_COUNTS_SQL).fetchall():
            info = infos[order]  # the records DuckDB rejected are counted already
            info.update(rows=info["rows"] + rows, quarantined=info["quarantined"] + quarantined)
            info["accepted"] = info["rows"] - info["quarantined"]
        quarantined = con.sql(_QUARANTINED_SQL).to_arrow_table()
        typed = _with_raw_lines(quarantined, {o: lay for o, (_, lay) in parsed.items()})
        batch.quarantined = pa.concat_tables([*rejected, typed])
        clock.lap("quarantine")
        if batch.accepted_rows:
            stage.mkdir(parents=True, exist_ok=True)
            accepted = stage / "accepted.parquet"
            written = _write_accepted(con, accepted)
            if written != batch.accepted_rows:  # the counts must add up, or nothing loads
                raise RuntimeError(f"wrote {written} accepted rows, counted {batch.accepted_rows}")
            batch.accepted = accepted
            clock.lap("stage accepted rows")
    log.debug("parsed %d file(s): %s", len(files), clock)
    return batch


def write_parquet(table: pa.Table, path: Path) -> Path:
    """Write a small table (the quarantine, the file audit) for a model to insert from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
