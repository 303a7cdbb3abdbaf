"""Hostile and careless interaction files, through the real dlt pipeline into a DuckDB file:
one bad file never stops the others, no row vanishes, nothing outside the configured folder is
read, and errors say what is wrong without quoting more than a short, escaped prefix.
(Regressions of the hostile-input review; each failed on main before its fix.)"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from conftest import warehouse_rows, with_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlt_pipelines.interactions_pipeline import load_interactions
from recomart_core import config

HEADER = "user_id,item_id,rating,timestamp,event_type\n"
GOOD = "1,10,4,2026-05-01 10:00:00,view\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path


def _load(home: Path, **fmt) -> tuple[config.Config, dict[str, dict]]:
    cfg = with_format(home, **fmt)
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    return cfg, {Path(f["source_file"]).name: f for f in result["files"]}


def _counts_add_up(cfg: config.Config) -> None:
    """Per file: rows in = loaded + quarantined, in source_files and in the tables."""
    rows = warehouse_rows(
        cfg,
        "select f.source_file, f.rows, f.accepted, f.quarantined,"
        " (select count(*) from raw_interactions.interactions i"
        "   where i.source_file = f.source_file),"
        " (select count(*) from raw_interactions.interactions_quarantine q"
        "   where q.source_file = f.source_file)"
        " from raw_interactions.source_files f where f.error is null",
    )
    for name, total, accepted, quarantined, loaded, kept in rows:
        assert total == accepted + quarantined == loaded + kept, name


def test_a_header_field_past_the_csv_module_limit_fails_that_file_only(home: Path) -> None:
    (home / "in" / "a_long.csv").write_text("user_id," + "x" * 200_000 + "\n" + GOOD)
    (home / "in" / "b_good.csv").write_text(HEADER + GOOD)
    cfg, files = _load(home)
    assert files["b_good.csv"]["accepted"] == 1 and files["b_good.csv"]["error"] is None
    error = files["a_long.csv"]["error"]
    assert "a_long.csv" in error and len(error) < 600  # no 200,000 characters quoted back
    _counts_add_up(cfg)


@pytest.mark.parametrize("newline", ["", "\n"])
def test_a_huge_last_field_is_a_row_like_any_other(home: Path, newline: str) -> None:
    (home / "in" / "huge.csv").write_text(
        HEADER + GOOD + "2,20,4,2026-05-01 10:00:00," + "v" * 5_000_000 + newline
    )
    cfg, files = _load(home)
    huge = files["huge.csv"]
    assert huge["rows"] == 2 and huge["accepted"] + huge["quarantined"] == 2
    _counts_add_up(cfg)


def test_a_long_line_in_the_middle_does_not_make_the_file_unreadable(home: Path) -> None:
    (home / "in" / "mid.csv").write_text(
        HEADER + GOOD + "2,20,4,2026-05-01 10:00:00," + "v" * 3_000_000 + "\n" + GOOD
    )
    cfg, files = _load(home)
    assert files["mid.csv"]["error"] is None and files["mid.csv"]["rows"] == 3
    _counts_add_up(cfg)


def test_a_symlink_leading_outside_the_folder_is_refused_and_never_read(
    home: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    secret = tmp_path_factory.mktemp("outside") / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.symlink(secret, home / "in" / "evil.csv")
    os.symlink(secret.parent, home / "in" / "evil_dir.csv")  # a directory: not a file, skipped
    (home / "in" / "good.csv").write_text(HEADER + GOOD)
    inside = home / "in" / "alias.csv"
    os.symlink(home / "in" / "good.csv", inside)  # a link within the folder is fine
    cfg, files = _load(home)
    error = files["evil.csv"]["error"]
    assert "refused, it leads outside the configured folder" in error
    assert "root:x" not in error and files["evil.csv"]["rows"] == 0
    assert files["good.csv"]["accepted"] == 1
    landed = [p.read_text() for p in (home / "data" / "raw").rglob("*") if p.is_file()]
    assert not any("root:x" in text for text in landed)  # never copied to the landing area
    quarantined = warehouse_rows(
        cfg, "select raw_line from raw_interactions.interactions_quarantine"
    )
    assert not any("root:x" in (line or "") for (line,) in quarantined)


def test_latin1_bytes_are_named_as_an_encoding_problem_or_read_as_configured(home: Path) -> None:
    (home / "in" / "latin.csv").write_bytes(
        (HEADER + "1,Café,4,2026-05-01 10:00:00,view\n").encode("latin-1")
    )
    (home / "in" / "ok.csv").write_text(HEADER + GOOD)
    _, files = _load(home)
    error = files["latin.csv"]["error"]
    assert "not UTF-8 text" in error and 'encoding (e.g. "latin-1")' in error
    assert "CSV Error on Line" not in error
    assert files["ok.csv"]["accepted"] == 1
    cfg, files = _load(home, encoding="latin-1")  # the same file again, now readable
    assert files["latin.csv"]["error"] is None
    items = warehouse_rows(cfg, "select item_id from raw_interactions.interactions order by 1")
    assert ("Café",) in items


def test_a_missing_column_error_quotes_a_short_escaped_header(home: Path) -> None:
    (home / "in" / "wide.csv").write_text("a\tb," + "z" * 5000 + "\n1,2\n")
    _, files = _load(home)
    error = files["wide.csv"]["error"]
    assert "missing required column(s)" in error and "\\t" in error and len(error) < 600


ROW = st.lists(
    st.one_of(
        st.text(alphabet=string.printable + "é\x00\"'", max_size=30),
        st.sampled_from(["1", "10", "4", "2026-05-01 10:00:00", "view", '"a,b"', '""']),
    ),
    min_size=0,
    max_size=7,
)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),  # more for a longer local run
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(ROW, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t"]),
    noise=st.binary(max_size=64),
    tail=st.sampled_from(["", "\n", "\r\n"]),
)
def test_fuzzed_files_never_stop_the_others_and_always_add_up(
    tmp_path_factory: pytest.TempPathFactory, rows, delimiter, noise, tail
) -> None:
    home = tmp_path_factory.mktemp("fuzz")
    (home / "in").mkdir()
    body = "\n".join(delimiter.join(row) for row in rows)
    header = HEADER.replace(",", delimiter)
    (home / "in" / "a_fuzz.csv").write_bytes((header + body + tail).encode() + noise)
    (home / "in" / "b_good.csv").write_text(
        HEADER.replace(",", delimiter) + GOOD.replace(",", delimiter)
    )
    cfg, files = _load(home, delimiter=delimiter)
    assert files["b_good.csv"]["accepted"] == 1  # a broken file never stops the others
    fuzz = files["a_fuzz.csv"]
    assert fuzz["error"] is not None or fuzz["rows"] == fuzz["accepted"] + fuzz["quarantined"]
    data = (home / "in" / "a_fuzz.csv").read_bytes()
    expected = _rows_by_hand(data, delimiter)
    if fuzz["error"] is None and expected is not None:
        assert fuzz["rows"] == len(expected)
        kept = warehouse_rows(
            cfg,
            "select source_line, raw_line from raw_interactions.interactions_quarantine"
            " where source_file like '%a_fuzz.csv'",
        )
        for line, text in kept:  # a quarantined row names the line it came from
            assert expected.get(line) == text
    _counts_add_up(cfg)


def _rows_by_hand(data: bytes, delimiter: str) -> dict[int, str] | None:
    """The rows of an unquoted file, worked out without DuckDB: {line number: text} of every
    line after the header with a field that is not blank (whitespace-only lines and lines of
    bare delimiters are blank, not rows). None when quotes or lone carriage returns (which
    DuckDB takes for line breaks) make lines and records differ."""
    if b'"' in data or data.replace(b"\r\n", b"").count(b"\r"):
        return None
    try:
        lines = data.decode().split("\n")
    except UnicodeDecodeError:
        return None
    return {
        number: line.removesuffix("\r")
        for number, line in enumerate(lines, start=1)
        if number > 1 and any(f.strip(" ") for f in line.removesuffix("\r").split(delimiter))
    }
