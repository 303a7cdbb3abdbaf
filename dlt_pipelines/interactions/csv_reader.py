"""Read one interactions file as it arrived: the DuckDB read of its fields as text, named as ours,
and which line of the file each record came from.

Files vary: headers with other names (mapped by config), no header at all (MovieLens's u.data, with
the columns named in config), tabs or commas, a UTF-8 byte order mark, quoted fields holding the
delimiter, blank lines. DuckDB reads every field as text in one parallel pass. The line of a record
is its position plus the header in the common case (no empty line anywhere, one line per record),
which a byte scan of the file proves; otherwise numpy indexes the file's lines.
"""

from __future__ import annotations

import csv
import logging
import mmap
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from recomart.core import schema as s
from recomart.core.settings import InteractionsFormat as CsvFormat  # [ingest.interactions]

log = logging.getLogger("ingestion")
NEWLINE, CARRIAGE_RETURN = 10, 13


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


@dataclass
class Lines:
    """Where the lines of a file break: the byte offset of every line feed, found in chunks."""

    path: Path
    size: int
    breaks: np.ndarray

    CHUNK = 1 << 22

    @classmethod
    def of(cls, path: Path) -> Lines:
        parts, offset, buffer = [], 0, bytearray(cls.CHUNK)
        with path.open("rb") as fh:
            while n := fh.readinto(buffer):
                chunk = np.frombuffer(buffer, dtype=np.uint8, count=n)
                parts.append(np.flatnonzero(chunk == NEWLINE) + offset)
                offset += n
        breaks = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return cls(path, offset, breaks)

    @property
    def count(self) -> int:
        """Lines in the file, the last one counted when it has no line break."""
        trailing = self.size > 0 and (len(self.breaks) == 0 or self.breaks[-1] != self.size - 1)
        return len(self.breaks) + trailing

    def _bounds(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (line break excluded) byte offsets of the given lines (1-based)."""
        index = numbers - 1
        starts = np.where(index > 0, self.breaks[np.maximum(index - 1, 0)] + 1, 0)
        padded = np.append(self.breaks, self.size)
        return starts, padded[index]

    def has_empty(self) -> bool:
        """Whether any line is empty or only a carriage return (checked on the breaks alone)."""
        if not len(self.breaks):
            return False
        gaps = np.diff(self.breaks, prepend=-1)  # line length + 1, line break included
        if (gaps == 1).any():
            return True
        crlf = np.flatnonzero(gaps == 2)
        return bool(len(crlf)) and bool(
            (self._bytes_at(self.breaks[crlf] - 1) == CARRIAGE_RETURN).any()
        )

    def numbers_of_nonempty(self) -> np.ndarray:
        """1-based numbers of the lines with any byte but a carriage return: the lines DuckDB
        makes records of."""
        numbers = np.arange(1, self.count + 1)
        starts, ends = self._bounds(numbers)
        length = ends - starts
        maybe_cr = np.flatnonzero(length == 1)
        empty = length == 0
        empty[maybe_cr] = self._bytes_at(starts[maybe_cr]) == CARRIAGE_RETURN
        return numbers[~empty]

    def _bytes_at(self, offsets: np.ndarray) -> np.ndarray:
        """The file's bytes at the given offsets (read through a memory map, only those pages)."""
        if not len(offsets):
            return np.empty(0, np.uint8)
        return np.memmap(self.path, dtype=np.uint8, mode="r")[offsets]

    def text(self, numbers: np.ndarray) -> list[str]:
        """The text of the given lines (1-based), as it is in the file (without line breaks)."""
        if not len(numbers):
            return []
        starts, ends = self._bounds(np.asarray(numbers))
        with self.path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return [
                data[start:end].removesuffix(b"\r").decode("utf-8", "replace")
                for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
            ]


@dataclass
class Layout:
    """How a file's records map to its lines.

    `first_line` set: record k (0-based, in file order) is line k + first_line. Else `numbers`
    holds each record's line. `spans_lines`: quoted fields span lines, so records are numbered
    (from first_line) instead of lines, and a record's text is rebuilt from its fields.
    """

    lines: Lines
    first_line: int | None = None
    numbers: np.ndarray | None = None
    spans_lines: bool = False


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


def read_sql(path: Path, fmt: CsvFormat) -> tuple[str, dict, list[str], list[str]]:
    """A DuckDB `read_csv(...)` of the file, every field as text, its columns renamed to ours
    (s.CSV_COLUMNS; a column the file lacks is null); with its parameters, the file's own
    columns (c0, c1, ... in file order) and which of ours the file has.

    Raises MissingColumnError when a required column is absent after mapping.
    """
    names = file_columns(path, fmt)
    ours = [fmt.column_map.get(name, name) for name in names]
    missing = [c for c in s.CSV_REQUIRED if c not in ours]
    if missing:
        raise MissingColumnError(path, missing, names)
    picked = {c: f"c{ours.index(c)}" for c in s.CSV_COLUMNS if c in ours}
    columns = ", ".join(f"{picked[c]} as \"{c}\"" if c in picked else f"null::varchar as \"{c}\""
                        for c in s.CSV_COLUMNS)  # fmt: skip
    own = [f"c{i}" for i in range(len(names))]
    read = (
        f"(select {columns}, {', '.join(own)} from read_csv($path, columns = {{"
        + ", ".join(f"'{c}': 'VARCHAR'" for c in own)
        + "}, header = $header, delim = $delim, quote = '\"', escape = '\"',"
        " auto_detect = false, null_padding = true{parallel}))"
    )
    params = {"path": str(path), "header": fmt.header, "delim": fmt.delimiter}
    return read, params, own, list(picked)


def create_from_csv(
    con: duckdb.DuckDBPyConnection, path: Path, statement: str, params: dict
) -> None:
    """Run `statement` (holding a `{parallel}` slot in its read_csv); files whose quoted fields
    span lines are read again without parallelism, as DuckDB asks.

    Raises UnreadableFileError when DuckDB cannot read the file as CSV.
    """
    try:
        con.execute(statement.replace("{parallel}", ""), params).fetchall()
    except duckdb.Error as exc:
        if "parallel=false" not in str(exc):  # DuckDB's hint for quoted line breaks
            raise UnreadableFileError(path, str(exc)) from exc
        try:
            con.execute(statement.replace("{parallel}", ", parallel = false"), params).fetchall()
        except duckdb.Error as again:
            raise UnreadableFileError(path, str(again)) from again


def layout(lines: Lines, records: int, header: bool) -> Layout:
    """Map `records` records of a file to its lines. Records are the non-empty lines after
    the header, unless quoted fields span lines."""
    path = lines.path
    skip = 1 if header else 0
    if lines.count == records + skip and not lines.has_empty():  # a record per line
        return Layout(lines, first_line=1 + skip)
    numbers = lines.numbers_of_nonempty()[skip:]
    if len(numbers) == records:
        return Layout(lines, numbers=numbers)
    log.warning("%s: quoted fields span lines; source_line counts records, not lines", path)
    return Layout(lines, first_line=1 + skip, spans_lines=True)


def register_numbers(con: duckdb.DuckDBPyConnection, layout: Layout, name: str) -> None:
    """Register the records' line numbers as a view `name` to join on position."""
    con.register(name, pa.table({s.SOURCE_LINE: pa.array(layout.numbers, pa.int64())}))
