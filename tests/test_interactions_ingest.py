"""Interaction files as they really arrive, through the real dlt pipeline into a DuckDB file.

Each test writes small files by hand, loads them with load_interactions() and checks, row by row,
what landed in raw_interactions and in the quarantine.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import duckdb
import pytest
from conftest import warehouse_rows, with_format

from dlt_pipelines.interactions_pipeline import load_interactions
from recomart_core import config
from recomart_core.env import PROJECT_ROOT

HEADER = "user_id,item_id,rating,timestamp,event_type\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path


def _write(home: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = home / "in" / name
    path.write_text(text, encoding=encoding)
    return path


def _loaded(cfg: config.Config) -> list[tuple]:
    return warehouse_rows(
        cfg,
        "select user_id, item_id, rating, strftime(timestamp, '%Y-%m-%d %H:%M:%S'), event_type,"
        " source_line from raw_interactions.interactions order by source_file, source_line",
    )


def _quarantined(cfg: config.Config) -> list[tuple]:
    return warehouse_rows(
        cfg,
        "select source_line, raw_line, reason from raw_interactions.interactions_quarantine"
        " order by source_file, source_line",
    )


def test_movielens_header_mapped_by_config(home: Path) -> None:
    _write(home, "ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n")
    cfg = with_format(home, column_map={"userId": "user_id", "movieId": "item_id"})
    load_interactions(cfg, str(home / "in" / "*.csv"))
    assert _loaded(cfg) == [("1", "31", 2.5, "2009-12-14 02:52:24", None, 2)]


def test_tab_separated_u_data_without_header(home: Path) -> None:
    _write(home, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    cfg = with_format(
        home, delimiter="\t", header=False, columns=["user_id", "item_id", "rating", "timestamp"]
    )
    load_interactions(cfg, str(home / "in" / "u.data"))
    assert _loaded(cfg) == [
        ("196", "242", 3.0, "1997-12-04 15:55:49", None, 1),
        ("186", "302", 3.0, "1998-04-04 19:22:22", None, 2),
    ]


def test_half_steps_epoch_and_iso_timestamps_bom_quotes_and_blank_lines(home: Path) -> None:
    text = (
        "\ufeff" + HEADER + "1,10,4.5,2026-05-01 10:00:00,view\n"
        "\n"
        '2,"11",3.5,1777000000,"add_to_cart"\n'
        "   \n"
        "3,12,5,2026-05-01T10:00:00Z,purchase\n"
        "4,13,1,1777000000000,view\n"
        "\n"
    )
    _write(home, "messy.csv", text)
    cfg = with_format(home)
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    assert _loaded(cfg) == [
        ("1", "10", 4.5, "2026-05-01 10:00:00", "view", 2),
        ("2", "11", 3.5, "2026-04-24 03:06:40", "add_to_cart", 4),
        ("3", "12", 5.0, "2026-05-01 10:00:00", "purchase", 6),
        ("4", "13", 1.0, "2026-04-24 03:06:40", "view", 7),
    ]
    assert result["files"][0]["rows"] == 4 and result["files"][0]["quarantined"] == 0


def test_quoted_fields_with_the_delimiter_in_an_extra_column(home: Path) -> None:
    _write(
        home,
        "notes.csv",
        'user_id,item_id,note,rating,timestamp\n7,70,"red, large",4,2026-06-01 00:00:00\n',
    )
    cfg = with_format(home)
    load_interactions(cfg, str(home / "in" / "*.csv"))
    assert _loaded(cfg) == [("7", "70", 4.0, "2026-06-01 00:00:00", None, 2)]


def test_bad_rows_are_quarantined_with_line_raw_text_and_reason(home: Path) -> None:
    long_id = "u" * 257  # ids are text, up to 256 characters
    text = (
        HEADER + "1,10,4,2026-05-01 10:00:00,view\n"
        "\n"
        f"{long_id},10,3,2026-05-02 10:00:00,view\n"
        ",11,3,2026-05-02 10:00:00,view\n"
        "2, ,3,2026-05-02 10:00:00,view\n"
        "3,12,4,not-a-date,view\n"
        "4,14,great,2026-05-03 10:00:00,view\n"
        "1,10,4,2026-05-01 10:00:00,view\n"
        "5,15,,2026-05-03 10:00:00,view\n"
    )
    _write(home, "bad.csv", text)
    cfg = with_format(home)
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    assert _quarantined(cfg) == [
        (4, f"{long_id},10,3,2026-05-02 10:00:00,view", "unparseable user_id"),
        (5, ",11,3,2026-05-02 10:00:00,view", "missing user_id"),
        (6, "2, ,3,2026-05-02 10:00:00,view", "missing item_id"),
        (7, "3,12,4,not-a-date,view", "unparseable timestamp"),
        (8, "4,14,great,2026-05-03 10:00:00,view", "unparseable rating"),
    ]
    details = warehouse_rows(
        cfg, "select reason_detail from raw_interactions.interactions_quarantine"
    )
    assert sorted(details, key=str) == sorted(
        [(f"value: {long_id[:100]}",), (None,), (None,), ("value: not-a-date",),
         ("value: great",)],
        key=str,
    )  # fmt: skip
    # a missing rating loads (dbt imputes it); a repeated line loads too (dbt flags the repeat)
    assert [row[5] for row in _loaded(cfg)] == [2, 9, 10]
    file = result["files"][0]
    assert file["rows"] == 8 == file["accepted"] + file["quarantined"]


def test_missing_column_fails_that_file_only_and_empty_files_load_nothing(home: Path) -> None:
    _write(home, "a_good.csv", HEADER + "1,10,4,2026-05-01 10:00:00,view\n")
    _write(home, "b_no_time.csv", "user_id,item_id,rating\n1,11,4\n")
    _write(home, "c_empty.csv", "")
    _write(home, "d_header_only.csv", HEADER)
    cfg = with_format(home)
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    by_file = {Path(f["source_file"]).name: f for f in result["files"]}
    error = by_file["b_no_time.csv"]["error"]
    assert "b_no_time.csv: missing required column(s) timestamp" in error
    assert by_file["b_no_time.csv"]["rows"] == 0
    assert by_file["a_good.csv"]["accepted"] == 1
    assert by_file["c_empty.csv"]["rows"] == 0 and by_file["c_empty.csv"]["error"] is None
    assert by_file["d_header_only.csv"]["rows"] == 0
    assert len(_loaded(cfg)) == 1
    # the failed file is tried again next time; the others are not read again
    again = load_interactions(cfg, str(home / "in" / "*.csv"))
    assert [Path(f["source_file"]).name for f in again["files"]] == ["b_no_time.csv"]
    # source_files records each attempt: the failed file twice, under two load ids
    attempts = warehouse_rows(
        cfg,
        "select count(*), count(distinct _dlt_load_id) from raw_interactions.source_files"
        " where source_file like '%b_no_time.csv'",
    )
    assert attempts == [(2, 2)]


def test_same_file_twice_and_an_overlapping_redelivery_add_only_new_rows(home: Path) -> None:
    rows = [f"{u},{u * 10},4,2026-05-0{u} 10:00:00,view\n" for u in range(1, 7)]
    _write(home, "day1.csv", HEADER + "".join(rows[:4]))
    cfg = with_format(home)
    load_interactions(cfg, str(home / "in" / "*.csv"))
    assert len(_loaded(cfg)) == 4
    _write(home, "day1_copy.csv", HEADER + "".join(rows[:4]))  # same content, other name
    assert load_interactions(cfg, str(home / "in" / "*.csv"))["files"] == []
    _write(home, "day2.csv", HEADER + "".join(rows[2:]))  # two old rows, two new
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    assert result["files"][0]["accepted"] == 4  # parsed fine; the two known keys are not inserted
    assert sorted(r[0] for r in _loaded(cfg)) == ["1", "2", "3", "4", "5", "6"]
    # the Parquet staged for each load is gone once the load completed
    assert list((cfg.paths.dlt_pipelines / "staged" / "interactions").iterdir()) == []


def test_each_new_file_is_kept_as_it_arrived_in_the_landing_area(home: Path) -> None:
    text = "\ufeff" + HEADER + "1,10,4,2026-05-01 10:00:00,view\n"
    source = _write(home, "drop.csv", text)
    cfg = with_format(home)
    load_interactions(cfg, str(source))
    landed = list((home / "data" / "raw" / "interactions").glob("*/csv/*_drop.csv"))
    assert len(landed) == 1
    assert landed[0].read_bytes() == source.read_bytes()


def test_windows_line_endings_and_quoted_line_breaks(home: Path) -> None:
    _write(home, "crlf.csv", HEADER.replace("\n", "\r\n") + "1,10,4,2026-05-01 10:00:00,view\r\n")
    _write(
        home,
        "multiline.csv",
        'user_id,item_id,rating,timestamp,note\n1,11,4,2026-05-01 10:00:00,"two\nlines"\n'
        "2,,3,2026-05-01 11:00:00,ok\n",
    )
    cfg = with_format(home)
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    assert [f["accepted"] for f in result["files"]] == [1, 1]
    # records spanning lines are numbered by record, and the bad one is rebuilt from all its fields
    assert _quarantined(cfg) == [(3, "2,,3,2026-05-01 11:00:00,ok", "missing item_id")]


def test_a_file_that_is_not_utf8_is_reported_by_name(home: Path) -> None:
    _write(home, "latin1.csv", HEADER + "1,10,4,2026-05-01 10:00:00,vue d'été\n", "latin-1")
    _write(home, "ok.csv", HEADER + "2,20,4,2026-05-01 10:00:00,view\n")
    cfg = with_format(home)
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    errors = {Path(f["source_file"]).name: f["error"] for f in result["files"]}
    assert errors["ok.csv"] is None
    assert "latin1.csv" in errors["latin1.csv"]
    assert [r[0] for r in _loaded(cfg)] == ["2"]


def test_ids_are_text_as_written_and_time_zone_offsets_applied(home: Path) -> None:
    text = (
        HEADER + "5.5,007,4,2026-05-01 10:00:00,view\n"  # text ids: 007 is not 7
        "7.0,10.00,4,2026-05-01T12:30:00+02:00,view\n"  # a float-typed export; an offset
        "8,11,4,2026-05-01 12:30:00-03:30,view\n"
        "9,12,4,1777631400000,view\n"  # epoch milliseconds
    )
    _write(home, "ids.csv", text)
    cfg = with_format(home)
    load_interactions(cfg, str(home / "in" / "*.csv"))
    assert _quarantined(cfg) == []
    assert _loaded(cfg) == [
        ("5.5", "007", 4.0, "2026-05-01 10:00:00", "view", 2),
        ("7", "10", 4.0, "2026-05-01 10:30:00", "view", 3),
        ("8", "11", 4.0, "2026-05-01 16:00:00", "view", 4),
        ("9", "12", 4.0, "2026-05-01 10:30:00", "view", 5),
    ]


def test_a_load_job_run_twice_inserts_nothing_twice(home: Path) -> None:
    """dlt runs a job again when a crash came between its commit and its bookkeeping: the model
    (INSERT ... WHERE NOT EXISTS on the natural key) must then insert nothing."""
    from dlt_pipelines.interactions.helpers import SourceFile, file_sha256, parse_files
    from dlt_pipelines.interactions.models import interactions_model

    cfg = with_format(home)
    path = _write(
        home, "a.csv", HEADER + "1,10,4,2026-05-01 10:00:00,view\n1,10,,2026-05-01 10:00:00,\n"
    )
    load_interactions(cfg, str(path))
    batch = parse_files([SourceFile(path, "a.csv", file_sha256(path))], None, home / "stage")
    insert = (
        "insert into raw_interactions.interactions by name select *, 'again' as _dlt_load_id"
        f" from ({interactions_model(batch.accepted, ['a.csv']).to_sql()})"
    )
    with duckdb.connect(str(cfg.paths.warehouse)) as con:
        for _ in range(2):
            con.execute(insert).fetchall()
        loaded = con.execute("select count(*) from raw_interactions.interactions").fetchall()
    assert batch.accepted_rows == 2 and loaded == [(2,)]  # the null rating and event matched too


def test_a_parse_ahead_that_guessed_wrong_is_thrown_away(home: Path) -> None:
    """The parse started before the run sees one file; a second arrives before extraction
    decides: extraction parses both itself, and the guess leaves nothing behind."""
    from dlt_pipelines.common import make_pipeline
    from dlt_pipelines.interactions import interactions_source
    from dlt_pipelines.interactions.ahead import ParseAhead
    from dlt_pipelines.interactions.files import staged_dir
    from dlt_pipelines.interactions.helpers import CsvFormat
    from dlt_pipelines.interactions.settings import DATASET, PIPELINE_NAME

    cfg = with_format(home)
    _write(home, "a.csv", HEADER + "1,10,4,2026-05-01 10:00:00,view\n")
    pipeline = make_pipeline(PIPELINE_NAME, DATASET, cfg)
    files_glob, fmt = str(home / "in" / "*.csv"), CsvFormat()
    ahead = ParseAhead(pipeline, files_glob, home, fmt, staged_dir(cfg))
    _write(home, "b.csv", HEADER + "2,20,4,2026-05-01 11:00:00,view\n")
    audit: list[dict] = []
    pipeline.run(interactions_source(files_glob, cfg, fmt, None, audit, ahead))
    ahead.close()
    assert [Path(f["source_file"]).name for f in audit] == ["a.csv", "b.csv"]
    assert [r[0] for r in _loaded(cfg)] == ["1", "2"]
    assert not list(staged_dir(cfg).glob("ahead-*"))


# --- the shop's own layout: formats, time zones, event names, returns ---------------------------


RETAIL_MAP = {
    "InvoiceNo": "transaction_id",
    "StockCode": "item_id",
    "Quantity": "quantity",
    "InvoiceDate": "timestamp",
    "UnitPrice": "unit_price",
    "CustomerID": "user_id",
}
RETAIL_HEADER = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
)


def _typed(cfg: config.Config) -> list[tuple]:
    return warehouse_rows(
        cfg,
        "select user_id, item_id, strftime(timestamp, '%Y-%m-%d %H:%M'), event_type, quantity,"
        " unit_price, transaction_id from raw_interactions.interactions"
        " order by source_file, source_line",
    )


def test_a_retail_export_month_first_dates_local_time_float_ids_and_skus(home: Path) -> None:
    _write(
        home,
        "retail.csv",
        RETAIL_HEADER + '536365,85123A,"WHITE HANGING HEART, T-LIGHT",6,12/1/2010 8:26,2.55,'
        "17850.0,United Kingdom\n"
        "536366,007,PEN,1,7/1/2011 14:05,0.85,12346.0,France\n"  # summer time: UTC+1
        "536367,7,PEN,2,7/1/2011 14:05,0.85,0012346,France\n"  # ids as written: 007 is not 7
        "536368,22752,MUG,1,31/12/2010 9:00,1.25,12347.0,France\n",  # day first: unparseable
    )
    cfg = with_format(home, column_map=RETAIL_MAP, timestamp_format="%m/%d/%Y %H:%M",
               timezone="Europe/London")  # fmt: skip
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    assert _typed(cfg) == [
        ("17850", "85123A", "2010-12-01 08:26", None, 6.0, 2.55, "536365"),
        ("12346", "007", "2011-07-01 13:05", None, 1.0, 0.85, "536366"),
        ("0012346", "7", "2011-07-01 13:05", None, 2.0, 0.85, "536367"),
    ]
    assert _quarantined(cfg) == [
        (5, "536368,22752,MUG,1,31/12/2010 9:00,1.25,12347.0,France", "unparseable timestamp")
    ]
    assert result["files"][0]["rows"] == 4


def test_day_first_formats_and_epoch_units_are_explicit(home: Path) -> None:
    text = "user_id,item_id,timestamp\n1,a,31/12/2010 23:59\n2,b,01/02/2011 00:00\n"
    _write(home, "eu.csv", text)
    _write(home, "ms.csv", "user_id,item_id,timestamp\n3,c,1433221332117\n")
    cfg = with_format(home, timestamp_format=["%d/%m/%Y %H:%M", "epoch_ms"])
    load_interactions(cfg, str(home / "in" / "*.csv"))
    assert [(r[0], r[2]) for r in _typed(cfg)] == [
        ("1", "2010-12-31 23:59"),
        ("2", "2011-02-01 00:00"),  # 1 February, not 2 January
        ("3", "2015-06-02 05:02"),
    ]


def test_event_names_map_to_ours_and_returns_follow_the_rule(home: Path) -> None:
    _write(
        home,
        "events.csv",
        "timestamp,visitorid,event,itemid,transactionid\n"
        "1433221332117,257597,view,355908,\n"
        "1433224214164,992329,AddToCart ,248676,\n"
        "1433221999827,111016,transaction,7943,4000\n"
        "1433221955914,483717,click,253185,\n",  # not one of ours: dbt rejects it
    )
    columns = {"visitorid": "user_id", "itemid": "item_id", "event": "event_type",
               "transactionid": "transaction_id"}  # fmt: skip
    cfg = with_format(home, column_map=columns, timestamp_format="epoch_ms",
               event_map={"addtocart": "add_to_cart", "transaction": "purchase"})  # fmt: skip
    load_interactions(cfg, str(home / "in" / "*.csv"))
    assert [(r[0], r[3], r[6]) for r in _typed(cfg)] == [
        ("257597", "view", None),
        ("992329", "add_to_cart", None),
        ("111016", "purchase", "4000"),
        ("483717", "click", None),
    ]


@pytest.mark.parametrize("action", ["drop", "negative", "quarantine"])
def test_returns_by_invoice_prefix_or_negative_quantity(home: Path, action: str) -> None:
    _write(
        home,
        "retail.csv",
        RETAIL_HEADER + "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
        "C536379,85123A,HEART,-6,12/1/2010 9:41,2.55,17850.0,United Kingdom\n"
        "536380,22752,MUG,-2,12/1/2010 9:45,1.25,17850.0,United Kingdom\n",
    )
    cfg = with_format(home, column_map=RETAIL_MAP, timestamp_format="%m/%d/%Y %H:%M",
               default_event="purchase",
               returns={"action": action, "transaction_prefix": "C"})  # fmt: skip
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    file = result["files"][0]
    assert file["rows"] == 3 == file["accepted"] + file["quarantined"]
    if action == "quarantine":  # held for review at ingest, with the reason
        assert [r[3] for r in _typed(cfg)] == [None]
        assert [(r[0], r[2]) for r in _quarantined(cfg)] == [
            (3, "return or cancellation"),
            (4, "return or cancellation"),
        ]
    else:  # loaded as `return` events; dbt drops them or keeps them as negative feedback
        assert [(r[3], r[4]) for r in _typed(cfg)] == [
            (None, 6.0),
            ("return", -6.0),
            ("return", -2.0),
        ]
        assert _quarantined(cfg) == []


def test_a_log_without_ratings_loads_as_implicit_feedback(home: Path) -> None:
    _write(home, "clicks.csv", "user_id,item_id,timestamp,event_type\nu-1,SKU-1,2026-05-01,view\n")
    cfg = with_format(home)
    load_interactions(cfg, str(home / "in" / "*.csv"))
    assert _loaded(cfg) == [("u-1", "SKU-1", None, "2026-05-01 00:00:00", "view", 2)]


def test_a_file_parses_within_a_small_parse_memory_limit(home: Path) -> None:
    """A 400K-row file parses with parse_memory_limit = 40 MB: every row counted, accepted rows
    staged, the defects quarantined, and no spill folder left behind. (Whether DuckDB spilled
    is not observable here; the limit only has to leave the parse correct.)"""
    import numpy as np
    import pyarrow.parquet as pq

    from dlt_pipelines.interactions.helpers import SPILL_DIR, SourceFile, file_sha256, parse_files
    from recomart_core.settings import InteractionsFormat

    n = 400_000
    rng = np.random.default_rng(1)
    ratings = rng.integers(1, 6, n).astype(str)
    seconds = np.arange(n) % 86_400
    times = [f"2026-05-01 {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in seconds]
    times[::1000] = ["yesterday"] * len(times[::1000])  # unparseable: quarantined
    lines = [
        f"u{i % 5000},sku-{i % 997},{r},{t},view"
        for i, (r, t) in enumerate(zip(ratings, times, strict=True))
    ]
    path = _write(home, "big.csv", HEADER + "\n".join(lines) + "\n")
    fmt = InteractionsFormat(parse_memory_limit="40MB")
    stage = home / "stage" / "load-1"
    batch = parse_files([SourceFile(path, "big.csv", file_sha256(path))], fmt, stage)
    (info,) = batch.files
    assert (info["rows"], info["quarantined"], info["error"]) == (n, n // 1000, None)
    assert pq.read_metadata(batch.accepted).num_rows == n - n // 1000
    assert batch.quarantined.num_rows == n // 1000
    assert not (stage.parent / SPILL_DIR).exists()  # DuckDB removed what it spilled


@pytest.mark.parametrize(("rule", "reason"), [("defect", "missing user_id"),
                                              ("guest", "guest (no user_id)")])  # fmt: skip
def test_lines_without_a_customer_are_defects_or_guests(home: Path, rule: str, reason: str) -> None:
    _write(
        home,
        "retail.csv",
        RETAIL_HEADER + "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
        "536366,22633,HAND WARMER,6,12/1/2010 8:28,1.85,,United Kingdom\n"
        "536367,,NO CODE,1,12/1/2010 8:34,1.69,,United Kingdom\n",
    )
    cfg = with_format(home, column_map=RETAIL_MAP, timestamp_format="%m/%d/%Y %H:%M",
               default_event="purchase", missing_user=rule)  # fmt: skip
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    assert result["files"][0]["quarantined"] == 2
    assert [(r[0], r[2]) for r in _quarantined(cfg)] == [(3, reason), (4, reason)]


def test_the_online_retail_example_reads_the_uci_file_a_csv_copy_and_online_retail_ii(
    home: Path,
) -> None:
    """The example's own [ingest.interactions], unchanged, on the three exports in circulation."""
    example = tomllib.loads((PROJECT_ROOT / "examples/online-retail/recomart.toml").read_text())
    heart = "WHITE HANGING HEART T-LIGHT HOLDER"
    uci = f"536365,85123A,{heart},6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
    _write(home, "a_uci.csv", RETAIL_HEADER + uci)
    copy = (
        f"C536379,85123A,{heart},-1,01-12-2010 09:41,2.55,17850.0,United Kingdom\n"
        "556380,22752,MUG,2,07-06-2011 14:05,1.25,12370.0,EIRE\n"
    )
    _write(home, "b_copy.csv", RETAIL_HEADER + copy)
    two = (
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        f"489434,79323P,{heart},12,2009-12-01 07:45:00,6.75,13085.0,United Kingdom\n"
        "489435,22350,CAT BOWL,1,2009-12-01 07:46:00,2.55,,France\n"
    )
    _write(home, "c_ii.csv", two)
    cfg = with_format(home, **example["ingest"]["interactions"])
    result = load_interactions(cfg, str(home / "in" / "*.csv"))
    assert [f["error"] for f in result["files"]] == [None, None, None]
    assert _typed(cfg) == [  # no event column: dbt gives the rows default_event (purchase)
        ("17850", "85123A", "2010-12-01 08:26", None, 6.0, 2.55, "536365"),
        ("17850", "85123A", "2010-12-01 09:41", "return", -1.0, 2.55, "C536379"),
        ("12370", "22752", "2011-06-07 13:05", None, 2.0, 1.25, "556380"),  # UK summer time
        ("13085", "79323P", "2009-12-01 07:45", None, 12.0, 6.75, "489434"),
    ]
    assert [(r[0], r[2]) for r in _quarantined(cfg)] == [(3, "guest (no user_id)")]
