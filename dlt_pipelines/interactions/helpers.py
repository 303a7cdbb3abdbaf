"""Parse interaction CSV files with DuckDB, whole columns at a time, into Arrow tables.

Each data row ends up in exactly one of two tables: `accepted` (typed, keyed by interaction_key)
or `quarantined` (the raw row, its file and line, and the reason). Semantic checks that need other
data (rating range, unknown items, conflicting duplicates) are dbt's job; here a row is rejected
only when it cannot be typed or is an exact repeat of a row already accepted in this run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from dlt_pipelines.interactions.csv_reader import (
    CsvFormat,
    Lines,
    MissingColumnError,
    UnreadableFileError,
    load_records,
)
from recomart import schema as s

__all__ = [
    "CsvFormat",
    "MissingColumnError",
    "ParsedBatch",
    "SourceFile",
    "file_sha256",
    "parse_files",
]

LINE_SPAN = 10_000_000_000  # rank = file_order * LINE_SPAN + line: files first, then lines


@dataclass(frozen=True)
class SourceFile:
    """A file to load: where it is, the name it is recorded under, and its content hash."""

    path: Path
    name: str
    sha256: str


@dataclass
class ParsedBatch:
    """The outcome of parsing some files: Arrow tables ready for dlt, and per-file counts."""

    accepted: pa.Table | None = None
    quarantined: pa.Table | None = None
    files: list[dict] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Typing and reasons, one statement over the whole file. Timestamps: ISO text (naive = UTC),
# epoch seconds or epoch milliseconds. A rating may be missing (dbt imputes it), not unparseable.
_TYPE_SQL = f"""
create or replace temp table {{typed}} as
with trimmed as (
    select
        nullif(trim({s.CSV_USER}), '') as user_text,
        nullif(trim({s.CSV_ITEM}), '') as item_text,
        nullif(trim({s.CSV_RATING}), '') as rating_text,
        nullif(trim("{s.CSV_TIMESTAMP}"), '') as timestamp_text,
        lower(nullif(trim({s.CSV_EVENT}), '')) as event_value,
        {s.SOURCE_LINE},
    from {{records}}
),
typed as (
    select
        *,
        try_cast(user_text as bigint) as user_id_value,
        try_cast(item_text as bigint) as item_id_value,
        try_cast(rating_text as double) as rating_value,
        coalesce(
            try_cast(timestamp_text as timestamptz)::timestamp,
            case
                when try_cast(timestamp_text as double) between 1e8 and 1e11
                    then to_timestamp(try_cast(timestamp_text as double))::timestamp
                when try_cast(timestamp_text as double) between 1e11 and 1e14
                    then to_timestamp(try_cast(timestamp_text as double) / 1000)::timestamp
            end
        ) as timestamp_value,
    from trimmed
)
select
    *,
    case
        when user_text is null then 'missing {s.CSV_USER}'
        when user_id_value is null then 'unparseable {s.CSV_USER}'
        when item_text is null then 'missing {s.CSV_ITEM}'
        when item_id_value is null then 'unparseable {s.CSV_ITEM}'
        when timestamp_text is null then 'missing {s.CSV_TIMESTAMP}'
        when timestamp_value is null then 'unparseable {s.CSV_TIMESTAMP}'
        when rating_text is not null and rating_value is null then 'unparseable {s.CSV_RATING}'
    end as reason,
    md5(concat_ws('|', user_id_value, item_id_value, epoch_us(timestamp_value),
        coalesce(rating_value::varchar, ''), coalesce(event_value, ''))) as key,
    $file_name as {s.SOURCE_FILE},
    $file_sha256 as file_sha256,
    $file_order * {LINE_SPAN} + {s.SOURCE_LINE} as rank,
from typed
"""

# Exact repeats among the typed rows: the first occurrence of each repeated key.
_REPEATS_SQL = f"""
create or replace temp table repeats as
select key, min(rank) as first_rank, arg_min({s.SOURCE_FILE} || ':' || {s.SOURCE_LINE}, rank)
    as first_seen
from typed_rows
where reason is null
group by key
having count(*) > 1
"""

_ACCEPTED_SQL = f"""
select
    t.key as {s.INTERACTION_KEY},
    t.user_id_value as {s.CSV_USER},
    t.item_id_value as {s.CSV_ITEM},
    t.rating_value as {s.CSV_RATING},
    t.timestamp_value as "{s.CSV_TIMESTAMP}",
    t.event_value as {s.CSV_EVENT},
    t.{s.SOURCE_FILE},
    t.{s.SOURCE_LINE},
from typed_rows as t
left join repeats as r on t.key = r.key
where t.reason is null and (r.key is null or t.rank = r.first_rank)
order by t.rank
"""

_QUARANTINED_SQL = f"""
select file_sha256, {s.SOURCE_FILE}, {s.SOURCE_LINE}, reason as {s.REASON},
    null::varchar as {s.REASON_DETAIL}, rank
from typed_rows
where reason is not null
union all
select t.file_sha256, t.{s.SOURCE_FILE}, t.{s.SOURCE_LINE}, 'duplicate row',
    'first seen at ' || r.first_seen, t.rank
from typed_rows as t
join repeats as r on t.key = r.key
where t.reason is null and t.rank > r.first_rank
order by rank
"""


def _not_null(table: pa.Table, *columns: str) -> pa.Table:
    """Mark key columns non-nullable in the Arrow schema, as the dlt schema declares them."""
    fields = [f.with_nullable(False) if f.name in columns else f for f in table.schema]
    return table.cast(pa.schema(fields))


def _with_raw_lines(
    con: duckdb.DuckDBPyConnection, quarantined: pa.Table, lines: dict[int, Lines | None]
) -> pa.Table:
    """Add each quarantined row's text as it is in its file (only these rows are sliced). Where
    records span lines, the row's fields re-joined with commas stand in for it."""
    order = (quarantined.column("rank").to_numpy() // LINE_SPAN).astype(np.int64)
    numbers = quarantined.column(s.SOURCE_LINE).to_numpy()
    text: list[str | None] = [None] * len(numbers)
    for file_order, file_lines in lines.items():
        rows = np.flatnonzero(order == file_order)
        if file_lines is not None:
            found = file_lines.text(numbers[rows])
        else:
            fields = ", ".join(f"coalesce(\"{c}\", '')" for c in s.CSV_COLUMNS)
            joined = dict(
                con.execute(
                    f"select {s.SOURCE_LINE}, concat_ws(',', {fields}) from records_{file_order}"
                    f" where {s.SOURCE_LINE} in (select unnest($lines))",
                    {"lines": numbers[rows].tolist()},
                ).fetchall()
            )
            found = [joined[n] for n in numbers[rows]]
        for row, line_text in zip(rows, found, strict=True):
            text[row] = line_text
    table = quarantined.drop_columns(["rank"])
    return table.add_column(3, s.RAW_LINE, pa.array(text, pa.string()))


def parse_files(files: list[SourceFile], fmt: CsvFormat | None = None) -> ParsedBatch:
    """Parse files into accepted and quarantined rows, and per-file counts.

    A file that lacks a required column or cannot be read contributes no rows: its error is
    recorded in `files` and the other files still load.
    """
    fmt = fmt or CsvFormat()
    batch = ParsedBatch()
    lines: dict[int, Lines | None] = {}
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'").fetchall()
        parts = []
        for order, f in enumerate(files):
            info = {"source_file": f.name, "sha256": f.sha256, "size_bytes": f.path.stat().st_size}
            if not info["size_bytes"]:
                batch.files.append({**info, "rows": 0, "error": None})
                continue
            try:
                lines[order] = load_records(con, f.path, fmt, f"records_{order}")
            except (MissingColumnError, UnreadableFileError) as exc:
                batch.files.append({**info, "rows": 0, "error": str(exc).splitlines()[0]})
                continue
            con.execute(
                _TYPE_SQL.format(typed=f"typed_{order}", records=f"records_{order}"),
                {"file_name": f.name, "file_sha256": f.sha256, "file_order": order},
            ).fetchall()
            rows = con.execute(f"select count(*) from typed_{order}").fetchall()[0][0]
            batch.files.append({**info, "rows": rows, "error": None})
            parts.append(f"select * from typed_{order}")
        if not parts:
            return batch
        con.execute(f"create temp view typed_rows as {' union all '.join(parts)}").fetchall()
        con.execute(_REPEATS_SQL).fetchall()
        accepted = con.sql(_ACCEPTED_SQL).to_arrow_table()
        quarantined = _with_raw_lines(con, con.sql(_QUARANTINED_SQL).to_arrow_table(), lines)
    batch.accepted = _not_null(accepted, s.INTERACTION_KEY)
    batch.quarantined = _not_null(quarantined, "file_sha256", s.SOURCE_LINE)
    return batch
