"""Layouts of real public files through the real dlt pipeline into a DuckDB file: a delimiter of
several bytes (MovieLens 1M's `::`), a column of the file left unread (a session log's `user_id`
when the session is the user), and a time made of two columns (Diginetica's date plus the
milliseconds since the session began).

The tests on real data read ../shared/data (see its README) and skip when it is absent; the
expected values are worked out from the file in Python, without DuckDB.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import warehouse_rows, with_format

from dlt_pipelines.interactions.csv_reader import file_columns
from dlt_pipelines.interactions_pipeline import load_interactions
from recomart_core import config
from recomart_core.env import PROJECT_ROOT
from recomart_core.settings import ConfigError, InteractionsFormat, parse

DATA = PROJECT_ROOT.parent / "shared" / "data"
U_DATA = DATA / "movielens-100k" / "u.data"
DIGINETICA = DATA / "diginetica-sample" / "sample_train-item-views.csv"
DIGINETICA_FORMAT = {
    "delimiter": ";",
    "ignore_columns": ["user_id"],
    "timestamp_format": "%Y-%m-%d",
    "column_map": {"session_id": "user_id", "timeframe": "time_offset", "eventdate": "timestamp"},
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path


def _write(home: Path, name: str, text: str) -> Path:
    path = home / "in" / name
    path.write_bytes(text.encode())
    return path


def _needs(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is absent: the real public data of ../shared/data is not here")


def _quarantined(cfg: config.Config) -> list[tuple]:
    return warehouse_rows(
        cfg,
        "select source_line, raw_line, reason, reason_detail"
        " from raw_interactions.interactions_quarantine order by source_file, source_line",
    )


# --- delimiters of several bytes ----------------------------------------------------------------


def test_movielens_1m_layout_with_double_colons_loads_every_row_as_the_tab_file_has_it(
    home: Path,
) -> None:
    """MovieLens 100K's u.data rewritten as MovieLens 1M writes ratings.dat
    (UserID::MovieID::Rating::Timestamp, no header): every row loads, values and lines as in
    the tab-separated original."""
    _needs(U_DATA)
    rows = [line.split("\t") for line in U_DATA.read_text().splitlines()]
    path = _write(home, "ratings.dat", "".join("::".join(row) + "\n" for row in rows))
    cfg = with_format(home, delimiter="::", header=False, timestamp_format="epoch_s",
               columns=["user_id", "item_id", "rating", "timestamp"])  # fmt: skip
    result = load_interactions(cfg, str(path))
    assert [(f["rows"], f["accepted"], f["error"]) for f in result["files"]] == [
        (100_000, 100_000, None)
    ]
    loaded = warehouse_rows(
        cfg,
        "select user_id, item_id, rating, epoch(timestamp)::bigint, source_line"
        " from raw_interactions.interactions order by source_line",
    )
    expected = [
        (user, item, float(rating), int(seconds), number)
        for number, (user, item, rating, seconds) in enumerate(rows, start=1)
    ]
    assert loaded == expected


def test_a_header_split_by_a_multi_byte_delimiter_names_the_columns(home: Path) -> None:
    """The header is split on the whole delimiter, a quoted name may hold it; a bad row keeps
    its text, and a record spanning lines is rebuilt with the delimiter."""
    text = (
        'userId::"movie::Id"::rating::"time stamp"::note\n'
        "1::31::2.5::1260759144::a:b\n"
        "2::32::fine::1260759145::x\n"
        '3::::4::1260759146::"two\nlines"\n'
    )
    path = _write(home, "ratings.dat", text)
    mapping = {"userId": "user_id", "movie::Id": "item_id", "time stamp": "timestamp"}
    fmt = {"delimiter": "::", "column_map": mapping, "timestamp_format": "epoch_s"}
    assert file_columns(path, InteractionsFormat(**fmt)) == [
        "userId", "movie::Id", "rating", "time stamp", "note",
    ]  # fmt: skip
    cfg = with_format(home, **fmt)
    load_interactions(cfg, str(path))
    loaded = warehouse_rows(
        cfg,
        "select user_id, item_id, rating, epoch(timestamp)::bigint"
        " from raw_interactions.interactions",
    )
    assert loaded == [("1", "31", 2.5, 1260759144)]
    assert _quarantined(cfg) == [
        (3, "2::32::fine::1260759145::x", "unparseable rating", "value: fine"),
        (4, "3::::4::1260759146::two\nlines", "missing item_id", None),
    ]


# --- columns of the file left unread, and two columns onto one of ours ---------------------------


def test_an_ignored_column_of_a_headerless_file_is_skipped(home: Path) -> None:
    path = _write(home, "views.txt", "NA,s1,10,2026-05-01 10:00:00\n7,s2,11,2026-05-01 11:00:00\n")
    cfg = with_format(home, header=False, columns=["user_id", "session", "item_id", "timestamp"],
               ignore_columns=["user_id"], column_map={"session": "user_id"})  # fmt: skip
    load_interactions(cfg, str(path))
    loaded = warehouse_rows(
        cfg, "select user_id, item_id from raw_interactions.interactions order by source_line"
    )
    assert loaded == [("s1", "10"), ("s2", "11")]


def test_two_columns_onto_one_of_ours_are_refused_by_settings_without_a_header() -> None:
    raw = {"header": False, "columns": ["user_id", "session", "item_id", "timestamp"],
           "column_map": {"session": "user_id"}}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse({"ingest": {"interactions": raw}})
    assert (
        "column 1 'user_id' and column 2 'session' both map to user_id; map one of them"
        " elsewhere in column_map or list it in ignore_columns"
    ) in str(caught.value)
    with pytest.raises(ConfigError, match="ignore_columns names 'userid', not among columns"):
        parse({"ingest": {"interactions": {**raw, "ignore_columns": ["userid"]}}})


def test_two_columns_onto_one_of_ours_fail_that_file_naming_both(home: Path) -> None:
    _write(home, "a_sessions.csv", "session_id,user_id,item_id,timestamp\n"
           "s1,NA,10,2026-05-01 10:00:00\n")  # fmt: skip
    _write(home, "b_plain.csv", "user_id,item_id,timestamp\nu2,11,2026-05-01 11:00:00\n")
    cfg = with_format(home, column_map={"session_id": "user_id"})
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    errors = {Path(f["source_file"]).name: f["error"] for f in result["files"]}
    assert errors["b_plain.csv"] is None
    assert (
        "a_sessions.csv: column 1 'session_id' and column 2 'user_id' both map to user_id"
        in (errors["a_sessions.csv"])
    )
    assert warehouse_rows(cfg, "select user_id from raw_interactions.interactions") == [("u2",)]


# --- a time made of two columns ------------------------------------------------------------------


def test_a_time_offset_is_added_and_a_bad_one_quarantined_with_its_value(home: Path) -> None:
    path = _write(
        home,
        "views.csv",
        "visit;day;product;secs\n"
        "v1;2016-05-09;10;90\n"
        "v1;2016-05-09;11;-1.5\n"
        "v2;2016-05-09;12;soon\n"
        "v2;2016-05-09;13;\n"
        "v3;09/05/2016;14;5\n",
    )
    cfg = with_format(home, delimiter=";", timestamp_format="%Y-%m-%d", time_offset_unit="s",
               column_map={"visit": "user_id", "day": "timestamp", "product": "item_id",
                           "secs": "time_offset"})  # fmt: skip
    result = load_interactions(cfg, str(path))
    assert [(f["rows"], f["accepted"]) for f in result["files"]] == [(5, 2)]
    loaded = warehouse_rows(
        cfg,
        "select item_id, strftime(timestamp, '%Y-%m-%d %H:%M:%S.%f')"
        " from raw_interactions.interactions order by source_line",
    )
    assert loaded == [("10", "2016-05-09 00:01:30.000000"), ("11", "2016-05-08 23:59:58.500000")]
    assert _quarantined(cfg) == [
        (4, "v2;2016-05-09;12;soon", "unparseable time_offset", "value: soon"),
        (5, "v2;2016-05-09;13;", "missing time_offset", None),
        (6, "v3;09/05/2016;14;5", "unparseable timestamp", "value: 09/05/2016"),
    ]
    columns = warehouse_rows(
        cfg,
        "select column_name from information_schema.columns"
        " where table_schema = 'raw_interactions' and table_name = 'interactions'",
    )
    assert ("time_offset",) not in columns  # in the timestamp, not stored


def test_the_diginetica_sample_loads_sessions_as_users_at_date_plus_offset(home: Path) -> None:
    """Diginetica's item views (`;`, no final newline; userId mostly NA): the session is the user,
    the file's own user_id column is never read, and each view is at its date plus timeframe ms."""
    _needs(DIGINETICA)
    header, *lines = DIGINETICA.read_text().split("\n")
    assert header == "session_id;user_id;item_id;timeframe;eventdate"
    expected = []
    for number, line in enumerate(lines, start=2):
        session, _, item, timeframe, day = line.split(";")
        at = datetime.fromisoformat(day) + timedelta(milliseconds=int(timeframe))
        expected.append((session, item, at, number))
    cfg = with_format(home, **DIGINETICA_FORMAT)
    result = load_interactions(cfg, str(DIGINETICA))
    assert [(f["rows"], f["accepted"], f["quarantined"]) for f in result["files"]] == [
        (12_391, 12_391, 0)
    ]
    loaded = warehouse_rows(
        cfg,
        "select user_id, item_id, timestamp, source_line"
        " from raw_interactions.interactions order by source_line",
    )
    assert loaded == expected
    assert loaded[0] == ("1", "81766", datetime(2016, 5, 9, 0, 8, 46, 309_000), 2)
    assert len({row[0] for row in loaded}) == 2_986
    not_sessions = warehouse_rows(
        cfg, "select count(*) from raw_interactions.interactions where user_id = 'NA'"
    )
    assert not_sessions == [(0,)]  # the file's user_id (NA) never reached ours
