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
import pyarrow as pa

from dlt_pipelines.interactions.csv_reader import CsvFormat, MissingColumnError, read_records
from recomart import schema as s

__all__ = [
    "CsvFormat",
    "MissingColumnError",
    "ParsedBatch",
    "SourceFile",
    "file_sha256",
    "parse_files",
]


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


# Typing and reasons, one SQL statement over the whole file. Timestamps: ISO text (naive = UTC),
# epoch seconds (9-11 digits) or epoch milliseconds (12-14 digits). A rating may be missing
# (dbt imputes it) but not unparseable.
_TYPE_SQL = f"""
with typed as (
    select
        *,
        try_cast(trim({s.CSV_USER}) as bigint) as user_id_value,
        try_cast(trim({s.CSV_ITEM}) as bigint) as item_id_value,
        nullif(trim({s.CSV_RATING}), '') as rating_text,
        try_cast(nullif(trim({s.CSV_RATING}), '') as double) as rating_value,
        case
            when regexp_full_match(trim("{s.CSV_TIMESTAMP}"), '\\d{{9,11}}(\\.\\d+)?')
                then to_timestamp(trim("{s.CSV_TIMESTAMP}")::double)::timestamp
            when regexp_full_match(trim("{s.CSV_TIMESTAMP}"), '\\d{{12,14}}')
                then to_timestamp(trim("{s.CSV_TIMESTAMP}")::double / 1000)::timestamp
            else try_cast(trim("{s.CSV_TIMESTAMP}") as timestamptz)::timestamp
        end as timestamp_value,
        lower(nullif(trim({s.CSV_EVENT}), '')) as event_value,
        $file_name as {s.SOURCE_FILE},
        $file_sha256 as file_sha256,
        $file_order as file_order,
    from raw_rows
)
select
    *,
    case
        when nullif(trim({s.CSV_USER}), '') is null then 'missing {s.CSV_USER}'
        when user_id_value is null then 'unparseable {s.CSV_USER}'
        when nullif(trim({s.CSV_ITEM}), '') is null then 'missing {s.CSV_ITEM}'
        when item_id_value is null then 'unparseable {s.CSV_ITEM}'
        when nullif(trim("{s.CSV_TIMESTAMP}"), '') is null then 'missing {s.CSV_TIMESTAMP}'
        when timestamp_value is null then 'unparseable {s.CSV_TIMESTAMP}'
        when rating_text is not null and rating_value is null then 'unparseable {s.CSV_RATING}'
    end as reason,
    md5(concat_ws('|',
        user_id_value,
        item_id_value,
        strftime(timestamp_value, '%Y-%m-%dT%H:%M:%S.%f'),
        coalesce(rating_value::varchar, ''),
        coalesce(event_value, ''),
    )) as key
from typed
"""

_SPLIT_SQL = f"""
with ranked as (
    select
        *,
        row_number() over (partition by key order by file_order, {s.SOURCE_LINE}) as copy_number,
        first_value({s.SOURCE_FILE} || ':' || {s.SOURCE_LINE}) over (
            partition by key order by file_order, {s.SOURCE_LINE}
        ) as first_seen
    from typed_rows
    where reason is null
)
select
    key as {s.INTERACTION_KEY},
    user_id_value as {s.CSV_USER},
    item_id_value as {s.CSV_ITEM},
    rating_value as {s.CSV_RATING},
    timestamp_value as "{s.CSV_TIMESTAMP}",
    event_value as {s.CSV_EVENT},
    {s.SOURCE_FILE},
    {s.SOURCE_LINE},
    {s.RAW_LINE},
    file_sha256,
    case when copy_number > 1 then 'duplicate row' end as duplicate_reason,
    case when copy_number > 1 then 'first seen at ' || first_seen end as duplicate_detail,
from ranked
"""


def _not_null(table: pa.Table, *columns: str) -> pa.Table:
    """Mark key columns non-nullable in the Arrow schema, as the dlt schema declares them."""
    fields = [f.with_nullable(False) if f.name in columns else f for f in table.schema]
    return table.cast(pa.schema(fields))


def parse_files(files: list[SourceFile], fmt: CsvFormat | None = None) -> ParsedBatch:
    """Parse files into accepted and quarantined rows, and per-file counts.

    A file that lacks a required column or cannot be read contributes no rows: its error is
    recorded in `files` and the other files still load.
    """
    fmt = fmt or CsvFormat()
    batch = ParsedBatch()
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    typed_parts = []
    for order, f in enumerate(files):
        path, name = f.path, f.name
        info = {"source_file": name, "sha256": f.sha256, "size_bytes": path.stat().st_size}
        try:
            raw_rows = read_records(con, path, fmt) if info["size_bytes"] else None
        except (MissingColumnError, duckdb.Error, UnicodeDecodeError) as exc:
            batch.files.append({**info, "rows": 0, "error": str(exc).splitlines()[0]})
            continue
        if raw_rows is None or raw_rows.num_rows == 0:
            batch.files.append({**info, "rows": 0, "error": None})
            continue
        con.register("raw_rows", raw_rows)
        params = {"file_name": name, "file_sha256": info["sha256"], "file_order": order}
        typed_parts.append(con.sql(_TYPE_SQL, params=params).to_arrow_table())
        con.unregister("raw_rows")
        batch.files.append({**info, "rows": raw_rows.num_rows, "error": None})
    if not typed_parts:
        return batch
    con.register("typed_rows", pa.concat_tables(typed_parts, promote_options="default"))
    split = con.sql(_SPLIT_SQL).to_arrow_table()
    con.register("split_rows", split)
    batch.accepted = con.sql(
        f"select * exclude (duplicate_reason, duplicate_detail, {s.RAW_LINE}, file_sha256)"
        " from split_rows"
        " where duplicate_reason is null"
    ).to_arrow_table()
    batch.accepted = _not_null(batch.accepted, s.INTERACTION_KEY)
    quarantined = con.sql(
        f"""
        select file_sha256, {s.SOURCE_FILE}, {s.SOURCE_LINE}, {s.RAW_LINE}, reason as {s.REASON},
            null::varchar as {s.REASON_DETAIL}
        from typed_rows where reason is not null
        union all
        select file_sha256, {s.SOURCE_FILE}, {s.SOURCE_LINE}, {s.RAW_LINE}, duplicate_reason,
            duplicate_detail
        from split_rows where duplicate_reason is not null
        order by 2, 3
        """
    ).to_arrow_table()
    batch.quarantined = _not_null(quarantined, "file_sha256", s.SOURCE_LINE)
    con.close()
    return batch
