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
import pyarrow.compute as pc

from dlt_pipelines.interactions.fields import BLANK, ISO_FORMAT
from dlt_pipelines.sql import quote
from recomart_core import schema as s
from recomart_core.settings import AUTO
from recomart_core.settings import InteractionsFormat as CsvFormat  # [ingest.interactions]

log = logging.getLogger("ingestion")
NEWLINE, CARRIAGE_RETURN, QUOTE = 10, 13, 34
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
        self,
        path: Path | str,
        missing: list[str],
        found: list[str],
        ignored: list[str] | None = None,
    ) -> None:
        self.path, self.missing = path, missing
        header = excerpt(", ".join(found)) if found else "no columns"
        unread = f" (ignore_columns: {', '.join(ignored)})" if ignored else ""
        super().__init__(
            f"{path}: missing required column(s) {', '.join(missing)}; header has {header}{unread}"
        )


class DuplicateColumnError(ValueError):
    """Two of a file's columns map onto one of ours, neither ignored: nothing is loaded from it."""

    def __init__(self, path: Path | str, what: str) -> None:
        self.path = path
        super().__init__(f"{path}: {what} ([ingest.interactions])")


class UnreadableFileError(ValueError):
    """DuckDB could not read the file as CSV with the configured format."""

    def __init__(self, path: Path | str, reason: str) -> None:
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

    def odd_quote_lines(self) -> np.ndarray:
        """1-based numbers of the lines holding an odd number of quote characters (a quote
        opened and never closed on its line), found in chunks."""
        parts, offset, buffer = [], 0, bytearray(self.CHUNK)
        with self.path.open("rb") as fh:
            while n := fh.readinto(buffer):
                chunk = np.frombuffer(buffer, dtype=np.uint8, count=n)
                parts.append(np.flatnonzero(chunk == QUOTE) + offset)
                offset += n
        quotes = np.concatenate(parts) if parts else np.empty(0, np.int64)
        line_of = np.searchsorted(self.breaks, quotes, side="left") + 1
        counts = np.bincount(line_of, minlength=self.count + 1)
        return np.flatnonzero(counts % 2 == 1)

    def write_without(self, numbers: np.ndarray, target: Path) -> None:
        """Write the file to `target` without the given lines (1-based, sorted; each with its
        line break), in chunks: a byte mask per chunk, no loop over lines."""
        starts, ends = self._bounds(np.asarray(numbers))
        ends = np.minimum(ends + 1, self.size)  # the line break too
        offset = 0
        with self.path.open("rb") as src, target.open("wb") as out:
            while chunk := src.read(self.CHUNK):
                n = len(chunk)
                first = np.searchsorted(ends, offset, side="right")
                last = np.searchsorted(starts, offset + n, side="left")
                edges = np.zeros(n + 1, np.int64)
                np.add.at(edges, np.clip(starts[first:last] - offset, 0, n), 1)
                np.add.at(edges, np.clip(ends[first:last] - offset, 0, n), -1)
                drop = np.cumsum(edges[:-1]) > 0
                out.write(np.frombuffer(chunk, np.uint8)[~drop].tobytes())
                offset += n

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


def file_columns(path: Path, fmt: CsvFormat, shown: Path | str | None = None) -> list[str]:
    """The file's own column names: its first non-blank line, or the configured columns.
    Errors name `shown` (the file as the user knows it), else `path`."""
    if not fmt.header:
        return list(fmt.columns)
    shown = shown or path
    with path.open("rb") as fh:
        for raw in fh:
            line = _decode(shown, raw, fmt.encoding)
            if line.strip():
                try:
                    names = split_line(line, fmt.delimiter)
                except csv.Error as exc:  # e.g. a field past the csv module's size limit
                    raise UnreadableFileError(shown, f"header line: {exc}") from exc
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


def _decode(path: Path | str, raw: bytes, encoding: str = "utf-8") -> str:
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
    path: Path, fmt: CsvFormat, longest_line: int = 0, shown: Path | str | None = None
) -> tuple[str, dict, list[str], list[str]]:
    """A DuckDB `read_csv(...)` of the file, every field as text, its columns renamed to ours
    (s.CSV_INPUT_COLUMNS: the stored columns and time_offset; a column the file lacks, or
    whose column is ignored, is null); with its parameters, the file's own columns (c0, c1, ...
    in file order, ignored ones too) and which of ours the file has. Its max_line_size covers
    longest_line, so no line is skipped or refused for its length (DuckDB drops a last line
    over its limit without a word).

    Raises DuplicateColumnError when two columns map onto one of ours, MissingColumnError when
    a required column is absent after mapping (naming `shown`, else `path`).
    """
    shown = shown or path
    names = file_columns(path, fmt, shown)
    if twice := fmt.mapped_twice(names):
        raise DuplicateColumnError(shown, twice)
    ours = fmt.our_names(names)
    missing = [c for c in s.CSV_REQUIRED if c not in ours]
    if missing:
        ignored = [name for name in names if name in fmt.ignore_columns]
        raise MissingColumnError(shown, missing, names, ignored)
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
    con: duckdb.DuckDBPyConnection,
    path: Path,
    statement: str,
    params: dict,
    shown: Path | str | None = None,
    tolerant: Tolerant | None = None,
) -> Rejected | None:
    """Run `statement` (holding a `{parallel}` slot in its read_csv); files whose quoted fields
    span lines are read again without parallelism, as DuckDB asks. A file DuckDB cannot read
    strictly (a row of more fields than the header, a quote left open) is read again record by
    record when `tolerant` is given (read_tolerant): the records it cannot read are returned,
    the rest are in the statement's table.

    Raises UnreadableFileError (naming `shown`, else `path`) when DuckDB cannot read the file as
    CSV, or its text is not in the configured encoding.
    """
    shown = shown or path
    try:
        con.execute(statement.replace("{parallel}", ""), params).fetchall()
        return None
    except duckdb.Error as exc:
        _raise_if_not_text(exc, shown, params["encoding"])
        error = exc
    if "parallel=false" in str(error):  # DuckDB's hint for quoted line breaks
        try:
            con.execute(statement.replace("{parallel}", ", parallel = false"), params).fetchall()
            return None
        except duckdb.Error as again:
            _raise_if_not_text(again, shown, params["encoding"])
            error = again
    if tolerant is None:
        raise UnreadableFileError(shown, str(error)) from error
    return read_tolerant(con, statement, params, tolerant, shown)


def _raise_if_not_text(exc: duckdb.Error, shown: Path | str, encoding: str) -> None:
    if "invalid unicode" in str(exc).lower():  # the first line says where, not what
        line = re.search(r"on Line: (\d+)", str(exc))
        where = f"on line {line[1]}" if line else "in the file"
        raise UnreadableFileError(shown, _not_text(encoding, where)) from exc


@dataclass
class Tolerant:
    """What a tolerant read needs: the file's lines, whether it has a header, where a copy
    without its unbalanced lines may be written, and a name for DuckDB's rejects tables."""

    lines: Lines
    header: bool
    scratch: Path
    name: str


@dataclass
class Rejected:
    """The records of a file read tolerantly that were not read, each with its line in the
    file, its text and its reason (a table: source_line, raw_line, reason); and where the lines
    of the records that were read are: `read` the lines of the file DuckDB read (the file, or a
    copy without its unbalanced lines), `kept` the file's line number of each of them (None:
    the file itself), `covered` the lines of `read` that rejected records take."""

    table: pa.Table
    read: Lines
    kept: np.ndarray | None
    covered: np.ndarray


UNBALANCED_QUOTE = "unbalanced quote"
# One row per record DuckDB rejected (store_rejects), with its first error as our reason.
_REJECTS_SQL = f"""
with records as (
    select
        line_byte_position,
        -- DuckDB puts the line breaks before a record into its text: past them it starts
        ltrim(arg_min(csv_line, byte_position), chr(13) || chr(10)) as text,
        strlen(arg_min(csv_line, byte_position)) - strlen(text) as lead,
        arg_min(
            case
                when error_type in ('TOO MANY COLUMNS', 'MISSING COLUMNS') then
                    regexp_extract(error_message, 'Found: ([0-9]+)', 1) || ' fields, expected '
                    || regexp_extract(error_message, 'Expected Number of Columns: ([0-9]+)', 1)
                when error_type = 'UNQUOTED VALUE' then '{UNBALANCED_QUOTE}'
                when error_type = 'LINE SIZE OVER MAXIMUM' then 'line too long'
                when error_type ilike '%encoding%' or error_type ilike '%unicode%' then 'not text'
                else lower(error_type)
            end,
            byte_position
        ) as reason,
    from {{errors}}
    group by line_byte_position
)
select
    line_byte_position + lead as record_at,
    rtrim(text, chr(13) || chr(10)) as text,
    strlen(rtrim(text, chr(13) || chr(10)))
        - strlen(replace(rtrim(text, chr(13) || chr(10)), chr(10), '')) as span,
    reason,
from records
order by record_at
"""


def read_tolerant(
    con: duckdb.DuckDBPyConnection,
    statement: str,
    params: dict,
    tolerant: Tolerant,
    shown: Path | str,
) -> Rejected:
    """Read a file DuckDB could not read strictly, keeping what can be read.

    Lines with an odd number of quote characters are cut out first (a quote opened and never
    closed: CSV would read the rest of the file into one field), each rejected as `unbalanced
    quote`; DuckDB reads the rest record by record with store_rejects, and the records it
    rejects (more fields than the header: `6 fields, expected 5`; text after a closing quote:
    `unbalanced quote`) come back with their line. Only bad lines are looked at one by one.

    Raises UnreadableFileError when even so DuckDB cannot read it, or it is not text.
    """
    lines = tolerant.lines
    odd = lines.odd_quote_lines()
    if tolerant.header:  # the header line is read on its own (file_columns)
        first = lines.numbers_of_nonempty()[:1]
        odd = odd[odd > (first[0] if len(first) else 0)]
    read, kept = lines, None
    if len(odd):
        lines.write_without(odd, tolerant.scratch)
        kept = np.setdiff1d(np.arange(1, lines.count + 1), odd)
        read = Lines.of(tolerant.scratch, lines.encoding)
    errors, scans = f"{tolerant.name}_errors", f"{tolerant.name}_scans"
    options = (
        f", parallel = false, store_rejects = true, rejects_table = '{errors}',"
        f" rejects_scan = '{scans}'"
    )
    try:
        con.execute(
            statement.replace("{parallel}", options), {**params, "path": str(read.path)}
        ).fetchall()
    except duckdb.Error as exc:
        _raise_if_not_text(exc, shown, params["encoding"])
        raise UnreadableFileError(shown, str(exc)) from exc
    found = con.sql(_REJECTS_SQL.format(errors=errors)).to_arrow_table()
    reasons = found.column("reason")
    if pc.any(pc.equal(reasons, "not text")).as_py():
        raise UnreadableFileError(shown, _not_text(params["encoding"], "in the file"))
    at = found.column("record_at").to_numpy().astype(np.int64)
    spans = found.column("span").to_numpy().astype(np.int64)
    starts = np.searchsorted(read.breaks, at, side="left") + 1  # lines of `read`
    covered = np.repeat(starts, spans + 1) + _ranks(spans + 1)
    # a record of one line: its line as in the file; of several: the text DuckDB gives
    single = np.flatnonzero(spans == 0)
    texts = np.array(found.column("text").to_pylist(), dtype=object)
    texts[single] = read.text(starts[single])
    numbers = kept[starts - 1] if kept is not None else starts
    table = pa.table({
        s.SOURCE_LINE: pa.array(np.concatenate([odd, numbers]), pa.int64()),
        s.RAW_LINE: pa.array([*lines.text(odd), *texts], pa.string()),
        s.REASON: pa.concat_arrays(
            [pa.array([UNBALANCED_QUOTE] * len(odd), pa.string()), reasons.combine_chunks()]
        ),
    })  # fmt: skip
    return Rejected(table.sort_by(s.SOURCE_LINE), read, kept, covered)


def _ranks(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ..., size - 1 for each size, concatenated."""
    ends = np.cumsum(sizes)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - sizes, sizes)


def layout(
    lines: Lines,
    records: int,
    header: bool,
    rejected: Rejected | None = None,
    shown: Path | str | None = None,
) -> Layout:
    """Map `records` records of a file to its lines. Records are the non-empty lines after
    the header (but for those of records `rejected`), unless quoted fields span lines."""
    skip = 1 if header else 0
    if rejected is None and lines.count == records + skip and not lines.has_empty():
        return Layout(lines, first_line=1 + skip)  # a record per line
    read = rejected.read if rejected is not None else lines
    numbers = read.numbers_of_nonempty()[skip:]
    if rejected is not None:
        numbers = numbers[~np.isin(numbers, rejected.covered)]
    if len(numbers) == records:
        if rejected is not None and rejected.kept is not None:
            numbers = rejected.kept[numbers - 1]  # lines of the copy read -> the file's
        return Layout(lines, numbers=numbers)
    log.warning(
        "%s: quoted fields span lines; source_line counts records, not lines", shown or lines.path
    )
    return Layout(lines, first_line=1 + skip, spans_lines=True)


def register_numbers(con: duckdb.DuckDBPyConnection, layout: Layout, name: str) -> None:
    """Register the records' line numbers as a view `name` to join on position."""
    con.register(name, pa.table({s.SOURCE_LINE: pa.array(layout.numbers, pa.int64())}))


# --- a batch of files, read in two passes: prepare (lines, header, read), then execute ----------


@dataclass
class Prepared:
    """A file ready to be read: its place in the batch (`order`), the bytes read (`data`) and the
    name errors give (`shown`), its lines, its read (read_sql: the source, its parameters, the
    file's own columns and which of ours it has), and whether epoch numbers are parsed first."""

    order: int
    data: Path
    shown: Path | str
    lines: Lines
    source: str
    params: dict
    own: list[str]
    present: list[str]
    epoch_first: bool


@dataclass
class Read:
    """A file read and typed into typed_<order>: how its records map to its lines; the records
    DuckDB could not read (source_line, raw_line, reason; None: none); and the text, as in the
    file, of the lines of its records typed with a reason (file_order, source_line, raw_line;
    None when records span lines: the record's fields re-joined stand in for it)."""

    layout: Layout
    rejected: pa.Table | None
    bad_lines: pa.Table | None


READ_ERRORS = (MissingColumnError, DuplicateColumnError, UnreadableFileError)


def _epoch_first(con: duckdb.DuckDBPyConnection, source: str, params: dict) -> bool:
    """Whether the file's first rows hold more epoch numbers than ISO texts (MovieLens): then the
    epoch parser goes first (timestamp_format = auto)."""
    sample = (
        f'select count(try_cast("{s.CSV_TIMESTAMP}" as double)),'
        f' count(try_strptime("{s.CSV_TIMESTAMP}", {quote(ISO_FORMAT)}))'
        f" from (select * from {source.replace('{parallel}', '')} limit 1000)"
    )
    try:
        epochs, isos = con.execute(sample, params).fetchall()[0]
    except duckdb.Error:  # the full read reports what is wrong with the file
        return False
    return epochs > isos


def prepare(
    con: duckdb.DuckDBPyConnection, todo: list[tuple[int, Path, Path | str]], fmt: CsvFormat
) -> tuple[list[Prepared], dict[int, str]]:
    """Prepare each file (order, data, shown) of `todo` to be read: its lines, its header mapped,
    its read. A file that cannot be read as configured (a missing or doubly mapped column, not
    text) is left out: its error (the message's first line) is in the dict, by order."""
    prepared, errors = [], {}
    for order, data, shown in todo:
        try:
            lines = Lines.of(data, fmt.encoding)
            source, params, own, present = read_sql(data, fmt, lines.longest, shown=shown)
        except READ_ERRORS as exc:
            errors[order] = str(exc).splitlines()[0]
            continue
        epoch_first = AUTO in fmt.formats and _epoch_first(con, source, params)
        prepared.append(
            Prepared(order, data, shown, lines, source, params, own, present, epoch_first)
        )
    return prepared, errors


def execute(
    con: duckdb.DuckDBPyConnection,
    prepared: list[Prepared],
    statements: list[str],
    header: bool,
    scratch: Path,
) -> tuple[dict[int, Read], dict[int, str]]:
    """Run each prepared file's statement (fields.type_statements), reading the file into its
    temp table typed_<order>, and map its records to its lines (a view lines_<order> when they
    differ); `scratch` is the folder where a copy without unbalanced lines may be written
    meanwhile. A file DuckDB cannot read is left out: its error is in the dict, by order."""
    done, errors = {}, {}
    for p, statement in zip(prepared, statements, strict=True):
        copy = scratch / f".unbalanced_{p.order}.csv"
        tolerant = Tolerant(p.lines, header, copy, f"rejects_{p.order}")
        try:
            try:
                rejected = create_from_csv(con, p.data, statement, p.params, p.shown, tolerant)
                records = con.execute(f"select count(*) from typed_{p.order}").fetchall()[0][0]
                file_layout = layout(p.lines, records, header, rejected, p.shown)
            finally:
                copy.unlink(missing_ok=True)
        except READ_ERRORS as exc:
            errors[p.order] = str(exc).splitlines()[0]
            continue
        if file_layout.numbers is not None:  # lines and records differ (blank lines)
            register_numbers(con, file_layout, f"lines_{p.order}")
        table = rejected.table if rejected is not None else None
        done[p.order] = Read(file_layout, table, _bad_lines(con, p.order, file_layout))
    return done, errors


def _bad_lines(con: duckdb.DuckDBPyConnection, order: int, file_layout: Layout) -> pa.Table | None:
    """The lines, as in the file, of the records of typed_<order> typed with a reason (only these
    lines are read); None when records span lines."""
    if file_layout.spans_lines:
        return None
    found = con.execute(
        f"select rowid from typed_{order} where reason is not null and reason <> '{BLANK}'"
        " order by rowid"
    ).fetchnumpy()
    rowids = np.asarray(found["rowid"], dtype=np.int64)
    if file_layout.first_line is not None:
        numbers = rowids + file_layout.first_line
    else:
        numbers = np.asarray(file_layout.numbers, dtype=np.int64)[rowids]
    return pa.table({
        "file_order": pa.array(np.full(len(numbers), order), pa.int64()),
        s.SOURCE_LINE: pa.array(numbers, pa.int64()),
        s.RAW_LINE: pa.array(file_layout.lines.text(numbers), pa.string()),
    })  # fmt: skip
