"""Hostile and careless input, round two (issue 26), ingestion: each test failed on the code before
its fix. Real dlt pipeline, real DuckDB file; the filesystem is changed under the ingest between
listing a path and opening it (conftest.before_open wraps the ingest's open), which stands for
another process acting at that moment."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path

import duckdb
import pytest
from conftest import before_open as hook_before_open
from conftest import small_config, warehouse_rows, with_format

from dlt_pipelines.catalog_pipeline import CatalogLoadError, load_catalog
from dlt_pipelines.interactions import files as ingest_files
from dlt_pipelines.interactions_pipeline import load_interactions
from recomart_core import config, logs
from recomart_core import schema as s
from serving import schemas

HEADER = "user_id,item_id,rating,timestamp,event_type\n"
MARKER = "OUTSIDE-SECRET-7f3a"  # the content of a file outside the folder: must show up nowhere
RACE_RUNS = 4  # whole ingests under a swapping attacker (the probe leaked in 3 of 8)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path


@pytest.fixture
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outside") / "secret.csv"
    path.write_text(HEADER + f"{MARKER},1,4,2026-05-01 10:00:00,view\n{MARKER}2,x,y,z,w\n")
    return path


def _rows(n: int, start: int = 1) -> str:
    return "".join(f"u{i},i{i % 7},4,2026-05-01 10:00:00,view\n" for i in range(start, start + n))


def _load(cfg: config.Config, home: Path) -> dict[str, dict]:
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    return {Path(f["source_file"]).name: f for f in result["files"]}


def _warehouse_text(cfg: config.Config) -> str:
    """Every text value of the raw interactions dataset, joined."""
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables"
            " where table_schema = 'raw_interactions' and table_name not like '_dlt%'"
        ).fetchall()
        parts = [
            str(con.execute(f"select * from raw_interactions.{name}").fetchall())
            for (name,) in tables
        ]
    return "\n".join(parts)


def _landed(cfg: config.Config) -> list[Path]:
    return [p for p in cfg.paths.raw.rglob("*") if p.is_file()]


def test_a_symlink_loop_is_refused_with_a_reason_and_the_other_files_load(home: Path) -> None:
    """Before: `RuntimeError: Symlink loop` from files.py, nothing loaded."""
    os.symlink("loop.csv", home / "in" / "loop.csv")  # a link to itself
    os.symlink("pong.csv", home / "in" / "ping.csv")  # two links to each other
    os.symlink("ping.csv", home / "in" / "pong.csv")
    (home / "in" / "good.csv").write_text(HEADER + _rows(3))
    cfg = with_format(home)
    found = _load(cfg, home)
    assert found["good.csv"]["accepted"] == 3 and found["good.csv"]["error"] is None
    for name in ("loop.csv", "ping.csv", "pong.csv"):
        assert "refused, a symlink loop" in found[name]["error"], found[name]
        assert found[name]["rows"] == 0
    recorded = warehouse_rows(
        cfg, "select source_file, status, error from raw_interactions.source_files order by 1"
    )
    assert [(name, status) for name, status, _ in recorded] == [
        ("in/good.csv", "loaded"), ("in/loop.csv", "failed"), ("in/ping.csv", "failed"),
        ("in/pong.csv", "failed"),
    ]  # fmt: skip


def test_a_path_swapped_for_a_link_to_outside_after_listing_reads_nothing_of_it(
    home: Path, secret: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the check ran on the path, then the hash, the landing copy and the parse opened
    the path again: a swap in between put the outside file's lines in the quarantine and the
    landing area."""
    target = home / "in" / "a.csv"
    target.write_text(HEADER + _rows(2))

    def swap(*_: object) -> None:
        if not target.is_symlink():
            target.unlink()
            os.symlink(secret, target)

    def swap_on(path: Path) -> None:
        if path.name == "a.csv":
            swap()

    def hashed_then_swapped(path: Path) -> str:  # the moment after the old code's check
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        swap()
        return digest

    hook_before_open(monkeypatch, swap_on)
    monkeypatch.setattr(ingest_files, "file_sha256", hashed_then_swapped, raising=False)
    (home / "in" / "b.csv").write_text(HEADER + _rows(2, start=10))
    cfg = with_format(home)
    with caplog.at_level(logging.DEBUG):
        found = _load(cfg, home)
    assert found["b.csv"]["accepted"] == 2
    assert "refused, it leads outside the configured folder" in found["a.csv"]["error"]
    assert MARKER not in _warehouse_text(cfg)
    assert not any(MARKER.encode() in p.read_bytes() for p in _landed(cfg))
    assert MARKER not in caplog.text


def test_a_path_toggled_between_a_file_and_a_link_to_outside_never_leaks_it(
    tmp_path_factory: pytest.TempPathFactory, secret: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's probe: another process swaps `a.csv` between a regular file and a link to a
    file outside, as fast as it can, during whole ingests. Before: the outside file's lines
    reached the log, the landing area and the quarantine in some of the runs (3 of 8 there)."""
    for run in range(RACE_RUNS):
        home = tmp_path_factory.mktemp(f"race{run}")
        (home / "in").mkdir()
        (home / "in" / "b.csv").write_text(HEADER + _rows(2, start=10))
        target, spare = home / "in" / "a.csv", home / "spare"
        spare.mkdir()
        target.write_text(HEADER + _rows(2))
        stop = threading.Event()

        def toggle(target: Path = target, spare: Path = spare, stop: threading.Event = stop):
            while not stop.is_set():
                os.symlink(secret, spare / "link")
                os.replace(spare / "link", target)
                (spare / "file").write_text(HEADER + _rows(2))
                os.replace(spare / "file", target)

        attacker = threading.Thread(target=toggle, daemon=True)
        cfg = with_format(home)
        attacker.start()
        try:
            with caplog.at_level(logging.DEBUG):
                found = _load(cfg, home)
        finally:
            stop.set()
            attacker.join()
        assert found["b.csv"]["accepted"] == 2
        assert MARKER not in _warehouse_text(cfg)
        assert not any(MARKER.encode() in p.read_bytes() for p in _landed(cfg))
        assert MARKER not in caplog.text


def test_a_file_growing_during_ingest_is_recorded_landed_and_loaded_as_the_same_bytes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the sha256 was taken first, the landing copy and the parse read the path later:
    rows appended in between were loaded, or landed, but the two did not match the hash."""
    source = home / "in" / "grow.csv"
    source.write_text(HEADER + _rows(300))

    def grow() -> None:
        with source.open("a") as fh:
            fh.write(_rows(200, start=1000))

    if hasattr(ingest_files, "copy_out"):  # grows right after our copy was taken
        copy_out = ingest_files.copy_out

        def copied_then_grown(*args: object) -> tuple[str, int]:
            result = copy_out(*args)
            grow()
            return result

        monkeypatch.setattr(ingest_files, "copy_out", copied_then_grown)
    else:  # the code before: grows right after the hash
        file_sha256 = ingest_files.file_sha256

        def hashed_then_grown(path: Path) -> str:
            digest = file_sha256(path)
            grow()
            return digest

        monkeypatch.setattr(ingest_files, "file_sha256", hashed_then_grown)
    cfg = with_format(home)
    found = _load(cfg, home)["grow.csv"]
    (sha, landed_as, rows), = warehouse_rows(
        cfg, "select sha256, landed_as, rows from raw_interactions.source_files"
    )  # fmt: skip
    landed = (cfg.paths.home / landed_as).read_bytes()
    assert hashlib.sha256(landed).hexdigest() == sha
    assert landed.count(b"\n") - 1 == rows == found["accepted"]
    loaded = warehouse_rows(cfg, "select count(*) from raw_interactions.interactions")
    assert loaded == [(rows,)]


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_row_with_an_extra_field_or_an_open_quote_is_quarantined_and_the_rest_loads(
    home: Path, newline: str
) -> None:
    """Before: `not readable as CSV: ... CSV Error on Line: 503`, 0 rows loaded."""
    lines = _rows(1000).splitlines()
    lines[500] = "x1,i1,4,2026-05-01 10:00:00,view,EXTRA"  # line 502 (header = line 1)
    lines[700] = 'x2,"i2,4,2026-05-01 10:00:00,view'  # a quote never closed: line 702
    lines[800] = 'x3,"i3"x,4,2026-05-01 10:00:00,view'  # text after the closing quote: 802
    text = HEADER.replace("\n", newline) + newline.join(lines) + newline
    (home / "in" / "bad.csv").write_bytes(text.encode())
    cfg = with_format(home)
    found = _load(cfg, home)["bad.csv"]
    assert found["error"] is None
    assert (found["rows"], found["accepted"], found["quarantined"]) == (1000, 997, 3)
    quarantined = warehouse_rows(
        cfg,
        "select source_line, raw_line, reason from raw_interactions.interactions_quarantine"
        " order by source_line",
    )
    assert quarantined == [
        (502, lines[500], "6 fields, expected 5"),
        (702, lines[700], "unbalanced quote"),
        (802, lines[800], "unbalanced quote"),
    ]
    loaded = warehouse_rows(
        cfg,
        "select min(source_line), max(source_line), count(*) from raw_interactions.interactions",
    )
    assert loaded == [(2, 1001, 997)]
    wrong = warehouse_rows(  # every loaded row sits on its own line of the file
        cfg,
        "select count(*) from raw_interactions.interactions"
        " where user_id <> 'u' || (source_line - 1)",
    )
    assert wrong == [(0,)]


def test_a_newline_in_a_file_name_cannot_forge_a_log_line(home: Path) -> None:
    """Before: the name was written as it is, making a line that looks like one of ours."""
    forged = "2026-12-07 00:00:00 - ingestion - INFO - FAKE LINE injected"
    (home / "in" / f"x\n{forged}.csv").write_text(HEADER + _rows(1))
    (home / "in" / "y\x1b[2Jz.csv").write_text(HEADER + 'u1,"i\n2",4,2026-05-01 10:00:00,view\n')
    cfg_file = small_config(home)
    text = cfg_file.read_text().replace(
        'interactions_glob = "data/generated/interactions/*.csv"', 'interactions_glob = "in/*.csv"'
    )
    cfg_file.write_text(text)
    from conftest import run_stage

    proc = run_stage(home, cfg_file, "ingest", "--source", "interactions")
    logged = [proc.stderr, *(p.read_text() for p in (home / "logs").glob("ingestion_*.log"))]
    for text in logged:
        assert "x\\n2026-12-07 00:00:00 - ingestion - INFO - FAKE LINE injected.csv" in text
        assert not any(line.startswith(forged) for line in text.splitlines())
        assert "\x1b" not in text and "y\\x1b[2Jz.csv" in text
        for line in text.splitlines():  # each line is ours, or an indented continuation
            assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - |    \| ", line), line


def test_the_log_formatter_escapes_every_value_and_indents_continuations() -> None:
    record = logging.LogRecord(
        "ingestion", logging.ERROR, __file__, 1, "file %s: %d rows, %.1f s\nnext",
        ("a\nb\rc\x85d\te", 3, 1.25), None,
    )  # fmt: skip
    line = logs.SafeFormatter(logs.FORMAT, logs.DATEFMT).format(record)
    assert line.endswith(
        " - ingestion - ERROR - file a\\nb\\rc\\x85d\\te: 3 rows, 1.2 s\n    | next"
    )


def test_the_same_bad_rows_delivered_twice_at_once_are_quarantined_and_counted_once(
    home: Path,
) -> None:
    """Before: both copies were parsed: the bad row twice in the quarantine, rows read 4."""
    content = HEADER + _rows(1) + "u9,i9,4,not a date,view\n"
    (home / "in" / "a.csv").write_text(content)
    (home / "in" / "a_again.csv").write_text(content)
    cfg = with_format(home)
    _load(cfg, home)
    assert warehouse_rows(cfg, "select count(*) from raw_interactions.interactions_quarantine") == [
        (1,)
    ]
    assert warehouse_rows(cfg, "select sum(rows) from raw_interactions.source_files") == [(2,)]
    (home / "in" / "a_third.csv").write_text(content)  # and later, under a third name
    _load(cfg, home)
    assert warehouse_rows(cfg, "select count(*) from raw_interactions.interactions_quarantine") == [
        (1,)
    ]


def test_ids_with_control_characters_are_quarantined_by_the_apis_own_rule(home: Path) -> None:
    """Before: accepted at ingest, refused by the API (422): users that could never be served."""
    assert schemas.ID_PATTERN is s.ID_PATTERN and schemas.ID_RULES is s.ID_RULES  # one rule
    bad_ids = ["u\tx", "u\x7fx", "u\x85x", "u\x1bx"]
    rows = [f"{u},i1,4,2026-05-01 10:00:00,view" for u in bad_ids]
    rows += ["u1,i\x012,4,2026-05-01 10:00:00,view", "ok,i1,4,2026-05-01 10:00:00,view"]
    (home / "in" / "ids.csv").write_text(HEADER + "\n".join(rows) + "\n")
    cfg = with_format(home)
    _load(cfg, home)
    loaded = warehouse_rows(cfg, "select user_id, item_id from raw_interactions.interactions")
    assert loaded == [("ok", "i1")]
    assert all(re.fullmatch(s.ID_PATTERN, value) for row in loaded for value in row)
    reasons = warehouse_rows(
        cfg,
        "select source_line, reason from raw_interactions.interactions_quarantine order by 1",
    )
    assert reasons == [
        (2, "unparseable user_id"), (3, "unparseable user_id"), (4, "unparseable user_id"),
        (5, "unparseable user_id"), (6, "unparseable item_id"),
    ]  # fmt: skip


def test_a_date_out_of_this_era_is_quarantined_with_a_reason(home: Path) -> None:
    """Before: `0000-05-01` loaded as 1 BC, `-5000-...` as 5001 BC."""
    stamps = ["0000-05-01 10:00:00", "0001-05-01 10:00:00", "1899-12-31 23:59:59",
              "-5000-05-01 10:00:00", "1900-01-01 00:00:00", "2026-05-01 10:00:00"]  # fmt: skip
    rows = [f"u{n},i1,4,{stamp},view" for n, stamp in enumerate(stamps)]
    (home / "in" / "dates.csv").write_text(HEADER + "\n".join(rows) + "\n")
    cfg = with_format(home)
    _load(cfg, home)
    loaded = warehouse_rows(
        cfg, "select user_id from raw_interactions.interactions order by user_id"
    )
    assert loaded == [("u4",), ("u5",)]
    reasons = warehouse_rows(
        cfg,
        "select source_line, reason, reason_detail from raw_interactions.interactions_quarantine"
        " order by 1",
    )
    assert reasons == [
        (line, "timestamp out of range", f"value: {stamps[line - 2]}") for line in (2, 3, 4, 5)
    ]


@pytest.mark.parametrize(
    ("header", "column_map", "message"),
    [
        ("id,title,id,price", {}, "column 1 'id' and column 3 'id' would both be read as"),
        ("sku,title,id", {"sku": "id"}, "column 1 'sku' and column 3 'id' would both be read"),
    ],
    ids=["a name twice", "two names mapped onto one"],
)
def test_a_catalog_file_with_a_column_twice_is_refused_naming_the_file_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str, column_map: dict, message: str
) -> None:
    """Before: the first `id` was read and the second ignored, without a word."""
    monkeypatch.setenv("RECOMART_HOME", str(tmp_path))
    monkeypatch.delenv("RECOMART_CONFIG", raising=False)
    (tmp_path / "catalog").mkdir()
    row = ",".join(str(n) for n in range(header.count(",") + 1))
    (tmp_path / "catalog" / "products.csv").write_text(f"{header}\n{row}\n")
    config.load.cache_clear()
    try:
        cfg = config.load()
    finally:
        config.load.cache_clear()
    cfg = config.with_settings(
        cfg, catalog={"source": "files", "files": "catalog/*.csv", "column_map": column_map}
    )
    with pytest.raises(CatalogLoadError) as caught:
        load_catalog(cfg)
    assert "products.csv" in str(caught.value) and message in str(caught.value)


def test_an_interactions_column_twice_is_refused_unless_ignored(home: Path) -> None:
    """The interactions reader already refused a repeated column of ours (DuplicateColumnError);
    a repeated column listed in ignore_columns is read as neither."""
    text = "user_id,item_id,rating,timestamp,rating\nu1,i1,4,2026-05-01 10:00:00,5\n"
    (home / "in" / "twice.csv").write_text(text)
    cfg = with_format(home)
    error = _load(cfg, home)["twice.csv"]["error"]
    assert "twice.csv" in error and "column 3 'rating' and column 5 'rating'" in error
    (home / "in" / "twice.csv").unlink()
    (home / "in" / "twice_ignored.csv").write_text(text)
    cfg = with_format(home, ignore_columns=["rating"])
    found = _load(cfg, home)["twice_ignored.csv"]
    assert found["error"] is None and found["accepted"] == 1
    assert warehouse_rows(cfg, "select rating from raw_interactions.interactions") == [(None,)]
