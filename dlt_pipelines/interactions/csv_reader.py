"""Read one interactions file as it arrived: the DuckDB read of its fields as text, named as ours,
and which line of the file each record came from.

Files vary: headers with other names (mapped by config), no header at all (MovieLens's u.data, with
the columns named in config), tabs, commas, semicolons or a delimiter of up to 4 bytes (MovieLens
1M's `::`), a UTF-8 byte order mark, quoted fields holding the delimiter, blank lines. A column of
[ingest.interactions] ignore_columns is read (it is part of the raw line) but never becomes one of
ours, even when it has one of our names; two other columns mapping onto one of ours make the file
fail (DuplicateColumnError), never the first silently winning. DuckDB reads every field as text in
one parallel pass. The line of a record is its position plus the header in the common case (no
empty line anywhere, one line per record), which a byte scan of the file proves; otherwise numpy
indexes the file's lines.
"""

from __future__ import annotations

import csv
import logging
import mmap
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from recomart.core import schema as s
from recomart.core.settings import InteractionsFormat as CsvFormat  # [ingest.interactions]

log = logging.getLogger("ingestion")
NEWLINE, CARRIAGE_RETURN = 10, 13
DUCKDB_MAX_LINE = 2_097_152  # read_csv's default max_line_size: a longer line needs it raised
QUOTED = 120  # characters of a file's content an error message may quote (escaped)
CODECS = {"utf-8": "utf-8-sig", "latin-1": "latin-1"}  # [ingest.interactions] encoding


def excerpt(text: str, limit: int = QUOTED) -> str:
    """At most `limit` characters of text, escaped (repr), with how much was left out: what an
    error may quote of a file's content."""
    shown = repr(text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text):,} characters)"


class MissingColumnError(ValueError):
    """A file lacks a required column: nothing is loaded from it."""

    def __init__(
        self, path: Path, missing: list[str], found: list[str], ignored: list[str] | None = None
    ) -> None:
        self.path, self.missing = path, missing
        header = excerpt(", ".join(found)) if found else "no columns"
        unread = f" (ignore_columns: {', '.join(ignored)})" if ignored else ""
        super().__init__(
            f"{path}: missing required column(s) {', '.join(missing)}; header has {header}{unread}"
        )


class DuplicateColumnError(ValueError):
    """Two of a file's columns map onto one of ours, neither ignored: nothing is loaded from it."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        super().__init__(f"{path}: {what} ([ingest.interactions])")


class UnreadableFileError(ValueError):
    """DuckDB could not read the file as CSV with the configured format."""

    def __init__(self, path: Path, reason: str) -> None:
        first = reason.splitlines()[0] if reason else ""
        super().__init__(f"{path}: not readable as CSV: {excerpt(first, 300)[1:-1]}")


@dataclass
class Lines:
    """Where the lines of a file break: the byte offset of every line feed, found in chunks."""

    path: Path
    size: int
    breaks: np.ndarray
    encoding: str = "utf-8"

    CHUNK = 1 << 22

    @classmethod
    def of(cls, path: Path, encoding: str = "utf-8") -> Lines:
        parts, offset, buffer = [], 0, bytearray(cls.CHUNK)
        with path.open("rb") as fh:
            while n := fh.readinto(buffer):
                chunk = np.frombuffer(buffer, dtype=np.uint8, count=n)
                parts.append(np.flatnonzero(chunk == NEWLINE) + offset)
                offset += n
        breaks = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return cls(path, offset, breaks, encoding)

    @property
    def longest(self) -> int:
        """The length in bytes of the longest line (the last one too when it has no break)."""
        ends = np.append(self.breaks, self.size)
        return int(np.diff(ends, prepend=-1).max()) if self.size else 0

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
                data[start:end].removesuffix(b"\r").decode(self.encoding, "replace")
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
            line = _decode(path, raw, fmt.encoding)
            if line.strip():
                try:
                    names = split_line(line, fmt.delimiter)
                except csv.Error as exc:  # e.g. a field past the csv module's size limit
                    raise UnreadableFileError(path, f"header line: {exc}") from exc
                return [name.strip() for name in names]
    return []


def split_line(line: str, delimiter: str) -> list[str]:
    """The fields of one line of CSV text (a header), quotes read as the csv module (and
    DuckDB) read them. A delimiter of several characters (`::`) is first swapped for one
    character the line lacks, then swapped back inside the fields (quoted ones may hold it).

    Raises csv.Error on a line the csv module refuses (a field past its size limit).
    """
    if len(delimiter) == 1:
        return next(csv.reader([line], delimiter=delimiter))
    stand_in = next((c for c in map(chr, range(0xE000, 0x10000)) if c not in line), None)
    if stand_in is None:  # 8,192 private-use characters in one header line
        raise csv.Error("no character is free to stand in for the delimiter")
    fields = next(csv.reader([line.replace(delimiter, stand_in)], delimiter=stand_in))
    return [field.replace(stand_in, delimiter) for field in fields]


def _decode(path: Path, raw: bytes, encoding: str = "utf-8") -> str:
    try:
        return raw.decode(CODECS[encoding])
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(path, _not_text(encoding, f"at byte {exc.start}")) from exc


def _not_text(encoding: str, where: str) -> str:
    return (
        f"not {encoding.upper()} text (an invalid byte sequence {where}); save it as UTF-8, or "
        'set [ingest.interactions] encoding (e.g. "latin-1") to the encoding it has'
    )


def read_sql(
    path: Path, fmt: CsvFormat, longest_line: int = 0
) -> tuple[str, dict, list[str], list[str]]:
    """A DuckDB `read_csv(...)` of the file, every field as text, its columns renamed to ours
    (s.CSV_INPUT_COLUMNS: the stored columns and time_offset; a column the file lacks, or
    whose column is ignored, is null); with its parameters, the file's own columns (c0, c1, ...
    in file order, ignored ones too) and which of ours the file has. Its max_line_size covers
    longest_line, so no line is skipped or refused for its length (DuckDB drops a last line
    over its limit without a word).

    Raises DuplicateColumnError when two columns map onto one of ours, MissingColumnError when
    a required column is absent after mapping.
    """
    names = file_columns(path, fmt)
    if twice := fmt.mapped_twice(names):
        raise DuplicateColumnError(path, twice)
    ours = fmt.our_names(names)
    missing = [c for c in s.CSV_REQUIRED if c not in ours]
    if missing:
        ignored = [name for name in names if name in fmt.ignore_columns]
        raise MissingColumnError(path, missing, names, ignored)
    picked = {c: f"c{ours.index(c)}" for c in s.CSV_INPUT_COLUMNS if c in ours}
    columns = ", ".join(f"{picked[c]} as \"{c}\"" if c in picked else f"null::varchar as \"{c}\""
                        for c in s.CSV_INPUT_COLUMNS)  # fmt: skip
    own = [f"c{i}" for i in range(len(names))]
    read = (
        f"(select {columns}, {', '.join(own)} from read_csv($path, columns = {{"
        + ", ".join(f"'{c}': 'VARCHAR'" for c in own)
        + "}, header = $header, delim = $delim, quote = '\"', escape = '\"',"
        " auto_detect = false, null_padding = true, encoding = $encoding,"
        " max_line_size = $max_line{parallel}))"
    )
    params = {
        "path": str(path), "header": fmt.header, "delim": fmt.delimiter,
        "encoding": fmt.encoding, "max_line": max(DUCKDB_MAX_LINE, longest_line + 16),
    }  # fmt: skip
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
        if "invalid unicode" in str(exc).lower():  # the first line says where, not what
            line = re.search(r"on Line: (\d+)", str(exc))
            where = f"on line {line[1]}" if line else "in the file"
            raise UnreadableFileError(path, _not_text(params["encoding"], where)) from exc
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
