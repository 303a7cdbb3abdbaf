"""Read one interactions file as it arrived: text columns in file order, line numbers, raw lines.

Files vary: headers with other names (mapped by config), no header at all (MovieLens's u.data, with
the columns named in config), tabs or commas, a UTF-8 byte order mark, quoted fields holding the
delimiter, blank lines. DuckDB reads every field as text in one pass; a second pass over the raw
lines gives each record its physical line number and its text as it was, for the quarantine.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recomart import schema as s

log = logging.getLogger("ingestion")


class MissingColumnError(ValueError):
    """A file lacks a required column: nothing is loaded from it."""

    def __init__(self, path: Path, missing: list[str], found: list[str]) -> None:
        self.path, self.missing = path, missing
        super().__init__(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            f"header has {', '.join(found) or 'no columns'}"
        )


@dataclass(frozen=True)
class CsvFormat:
    """How the interaction files are laid out ([ingest.interactions] in recomart.toml)."""

    delimiter: str = ","
    header: bool = True
    columns: tuple[str, ...] = ()  # the file's columns in order, for files without a header
    column_map: Mapping[str, str] = field(default_factory=dict)  # file's name -> ours

    @classmethod
    def from_config(cls, section: Mapping) -> CsvFormat:
        return cls(
            delimiter=section.get("delimiter", ","),
            header=section.get("header", True),
            columns=tuple(section.get("columns", ())),
            column_map=dict(section.get("column_map", {})),
        )


def file_columns(path: Path, fmt: CsvFormat) -> list[str]:
    """The file's own column names: its first non-blank line, or the configured columns."""
    if not fmt.header:
        return list(fmt.columns)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for line in fh:
            if line.strip():
                return [name.strip() for name in next(csv.reader([line], delimiter=fmt.delimiter))]
    return []


def _physical_lines(con: duckdb.DuckDBPyConnection, path: Path) -> pa.Table:
    """Every non-blank line of the file with its 1-based line number."""
    lines = con.sql(
        "select text from read_csv($path, columns = {'text': 'VARCHAR'}, header = false,"
        " delim = chr(1), quote = '', escape = '', auto_detect = false)",
        params={"path": str(path)},
    ).to_arrow_table()
    text = lines.column("text")
    numbers = pa.array(np.arange(1, len(text) + 1, dtype=np.int64))
    keep = pc.and_(pc.is_valid(text), pc.not_equal(pc.utf8_trim_whitespace(text), ""))
    return pa.table({s.SOURCE_LINE: numbers, s.RAW_LINE: text}).filter(pc.fill_null(keep, False))


def _blank(table: pa.Table) -> pa.ChunkedArray:
    """True where every field of a record is null or white space (a blank line)."""
    blank = None
    for column in table.columns:
        empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(column), ""), True)
        blank = empty if blank is None else pc.and_(blank, empty)
    return blank


def read_records(con: duckdb.DuckDBPyConnection, path: Path, fmt: CsvFormat) -> pa.Table:
    """The file's records as text columns named as ours (s.CSV_COLUMNS), plus source_line and
    raw_line. Raises MissingColumnError when a required column is absent after mapping."""
    names = file_columns(path, fmt)
    ours = [fmt.column_map.get(name, name) for name in names]
    missing = [c for c in s.CSV_REQUIRED if c not in ours]
    if missing:
        raise MissingColumnError(path, missing, names)
    positional = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names)))
    records = con.sql(
        f"select * from read_csv($path, columns = {{{positional}}}, header = $header,"
        " delim = $delim, quote = '\"', escape = '\"', auto_detect = false, null_padding = true)",
        params={"path": str(path), "header": fmt.header, "delim": fmt.delimiter},
    ).to_arrow_table()
    records = records.filter(pc.invert(_blank(records)))
    wanted = {c: records.column(ours.index(c)) for c in s.CSV_COLUMNS if c in ours}
    if s.CSV_EVENT not in wanted:
        wanted[s.CSV_EVENT] = pa.nulls(records.num_rows, pa.string())
    table = pa.table({c: wanted[c] for c in s.CSV_COLUMNS})

    lines = _physical_lines(con, path)
    if fmt.header:
        lines = lines.slice(1)
    if lines.num_rows == table.num_rows:
        return table.append_column(s.SOURCE_LINE, lines.column(s.SOURCE_LINE)).append_column(
            s.RAW_LINE, lines.column(s.RAW_LINE)
        )
    # Quoted fields spanning lines: records no longer map one to one onto lines.
    log.warning("%s: quoted fields span lines; source_line counts records, not lines", path)
    first = 2 if fmt.header else 1
    numbers = pa.array(np.arange(first, first + table.num_rows, dtype=np.int64))
    raw = pc.binary_join_element_wise(
        *[pc.fill_null(table.column(c), "") for c in s.CSV_COLUMNS], fmt.delimiter
    )
    return table.append_column(s.SOURCE_LINE, numbers).append_column(s.RAW_LINE, raw)
