"""Read one interactions file as it arrived into a DuckDB temp table: text columns named as ours,
plus each record's physical line number.

Files vary: headers with other names (mapped by config), no header at all (MovieLens's u.data, with
the columns named in config), tabs or commas, a UTF-8 byte order mark, quoted fields holding the
delimiter, blank lines. DuckDB reads every field as text in one pass; numpy finds the line breaks in
the file's bytes, so each record gets its line number, and a quarantined row its text as it was.
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

from recomart import schema as s

log = logging.getLogger("ingestion")
NEWLINE, CARRIAGE_RETURN, SPACE, TAB = 10, 13, 32, 9


class MissingColumnError(ValueError):
    """A file lacks a required column: nothing is loaded from it."""

    def __init__(self, path: Path, missing: list[str], found: list[str]) -> None:
        self.path, self.missing = path, missing
        super().__init__(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            f"header has {', '.join(found) or 'no columns'}"
        )


class UnreadableFileError(ValueError):
    """DuckDB could not read the file as CSV with the configured format."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: not readable as CSV: {reason.splitlines()[0]}")


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


@dataclass
class Lines:
    """Where each physical line of a file starts and ends (byte offsets, without line breaks)."""

    data: np.ndarray  # the file's bytes
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, path: Path) -> Lines:
        data = np.fromfile(path, dtype=np.uint8)
        breaks = np.flatnonzero(data == NEWLINE)
        starts = np.concatenate(([0], breaks + 1))
        ends = np.concatenate((breaks, [len(data)]))
        if starts[-1] == len(data):  # nothing after the last line break
            starts, ends = starts[:-1], ends[:-1]
        has_cr = (ends > starts) & (data[np.maximum(ends - 1, 0)] == CARRIAGE_RETURN)
        return cls(data, starts, ends - has_cr)

    def numbers_of_nonempty(self) -> np.ndarray:
        """1-based numbers of the lines with any byte: the lines DuckDB makes records of."""
        return np.flatnonzero(self.ends > self.starts) + 1

    def text(self, numbers: np.ndarray) -> list[str]:
        """The text of the given lines (1-based), as it is in the file."""
        return [
            self.data[self.starts[n - 1] : self.ends[n - 1]].tobytes().decode("utf-8", "replace")
            for n in numbers
        ]


def file_columns(path: Path, fmt: CsvFormat) -> list[str]:
    """The file's own column names: its first non-blank line, or the configured columns."""
    if not fmt.header:
        return list(fmt.columns)
    with path.open("rb") as fh:
        for raw in fh:
            line = _decode(path, raw)
            if line.strip():
                return [name.strip() for name in next(csv.reader([line], delimiter=fmt.delimiter))]
    return []


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            path, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc


def load_records(con: duckdb.DuckDBPyConnection, path: Path, fmt: CsvFormat, table: str) -> Lines:
    """Create temp table `table` with the file's records as text columns named as ours
    (s.CSV_COLUMNS) and s.SOURCE_LINE; blank records are left out. Returns the file's Lines.

    Raises MissingColumnError when a required column is absent after mapping.
    """
    names = file_columns(path, fmt)
    ours = [fmt.column_map.get(name, name) for name in names]
    missing = [c for c in s.CSV_REQUIRED if c not in ours]
    if missing:
        raise MissingColumnError(path, missing, names)
    lines = Lines.of(path)
    numbers = lines.numbers_of_nonempty()[1 if fmt.header else 0 :]
    picked = {c: f"c{ours.index(c)}" for c in s.CSV_COLUMNS if c in ours}
    columns = ", ".join(f"{picked[c]} as \"{c}\"" if c in picked else f"null::varchar as \"{c}\""
                        for c in s.CSV_COLUMNS)  # fmt: skip
    read = (
        "read_csv($path, columns = {"
        + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names)))
        + "}, header = $header, delim = $delim, quote = '\"', escape = '\"',"
        " auto_detect = false, null_padding = true)"
    )
    params = {"path": str(path), "header": fmt.header, "delim": fmt.delimiter}
    all_null = " and ".join(f"c{i} is null" for i in range(len(names)))
    not_blank = " or ".join(f"coalesce(trim(c{i}), '') <> ''" for i in range(len(names)))
    # One pass: records beside the numbers of the lines they come from, matched by position.
    con.register("line_numbers", pa.table({s.SOURCE_LINE: pa.array(numbers, pa.int64())}))
    try:
        con.execute(
            f"create or replace temp table {table} as select {columns}, {s.SOURCE_LINE},"
            f" ({all_null}) as is_padding, ({not_blank}) as has_data"
            f" from {read} positional join line_numbers",
            params,
        ).fetchall()
    except duckdb.Error as exc:
        if "parallel=false" not in str(exc):  # DuckDB's hint for quoted line breaks
            raise UnreadableFileError(path, str(exc)) from exc
        read = read.replace("null_padding = true", "null_padding = true, parallel = false")
        con.execute(
            f"create or replace temp table {table} as select {columns}, null::bigint as"
            f" {s.SOURCE_LINE}, true as is_padding, ({not_blank}) as has_data from {read}",
            params,
        ).fetchall()
    finally:
        con.unregister("line_numbers")
    padded = con.execute(
        f"select count(*) from {table} where is_padding or {s.SOURCE_LINE} is null"
    ).fetchall()[0][0]
    if padded:  # quoted fields spanning lines: records and lines differ; number the records
        log.warning("%s: quoted fields span lines; source_line counts records, not lines", path)
        first = 2 if fmt.header else 1
        try:
            con.execute(
                f"create or replace temp table {table} as select {columns},"
                f" {first - 1} + row_number() over () as {s.SOURCE_LINE},"
                f" ({not_blank}) as has_data from {read}",
                params,
            ).fetchall()
        except duckdb.Error as exc:
            raise UnreadableFileError(path, str(exc)) from exc
    con.execute(f"delete from {table} where not has_data").fetchall()
    return None if padded else lines
