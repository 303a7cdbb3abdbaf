"""The public-dataset layout writers (tests/layouts.py): deterministic, exact formats, fast."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from layouts import (
    GENRES,
    NO_GENRES,
    write_movielens_100k,
    write_movielens_latest,
    write_online_retail,
    write_retailrocket,
)

WRITERS: dict[str, Callable[..., dict[str, Any]]] = {
    "movielens_100k": write_movielens_100k,
    "movielens_latest": write_movielens_latest,
    "online_retail": write_online_retail,
    "retailrocket": write_retailrocket,
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("layouts")
    return {name: write(root / name) for name, write in WRITERS.items()}


def _lines(path: Path) -> list[str]:
    return path.read_bytes().decode().split("\n")[:-1]  # the file ends with "\n"


@pytest.mark.parametrize("name", WRITERS)
def test_writer_is_deterministic_for_a_seed(name: str, tmp_path: Path) -> None:
    first, second = WRITERS[name](tmp_path / "a"), WRITERS[name](tmp_path / "b")
    other = WRITERS[name](tmp_path / "c", seed=8)
    for key, path in first["files"].items():
        assert path.read_bytes() == second["files"][key].read_bytes()
    assert any(
        path.read_bytes() != other["files"][key].read_bytes()
        for key, path in first["files"].items()
    )


@pytest.mark.parametrize("name", WRITERS)
def test_writer_default_sizes(name: str, tmp_path: Path) -> None:
    result = WRITERS[name](tmp_path)
    assert 8_000 <= result["rows"] - result.get("guest_rows", 0) <= 12_000
    assert (result["users"], result["items"]) == (300, 120)


def _check_users(frame: pd.DataFrame, user: str, time_col: str, unit: float) -> None:
    """Every user has >= 15 interactions spread over more than a week."""
    per_user = frame.groupby(user)[time_col].agg(["size", "min", "max"])
    assert per_user["size"].min() >= 15
    assert ((per_user["max"] - per_user["min"]) / unit > 7 * 86_400).all()


def test_movielens_100k_u_data(written: dict[str, dict[str, Any]]) -> None:
    result = written["movielens_100k"]
    path = result["files"]["ratings"]
    assert path.name == "u.data"
    lines = _lines(path)
    assert len(lines) == result["rows"]
    assert all(re.fullmatch(r"\d+\t\d+\t[1-5]\t\d{9}", line) for line in lines)
    frame = pd.read_csv(path, sep="\t", names=["user", "item", "rating", "timestamp"])
    assert frame["user"].min() == 1 and frame["user"].max() == result["users"]
    assert frame["item"].between(1, 120).all()
    assert not frame.duplicated(["user", "item"]).any()
    assert 3.2 < frame["rating"].mean() < 3.8
    when = pd.to_datetime(frame["timestamp"], unit="s")
    assert when.min() >= pd.Timestamp("1997-09-20") and when.max() < pd.Timestamp("1998-04-23")
    assert result["span_days"] > 200
    _check_users(frame, "user", "timestamp", 1)


def test_movielens_latest_ratings_and_movies(written: dict[str, dict[str, Any]]) -> None:
    result = written["movielens_latest"]
    ratings_path, movies_path = result["files"]["ratings"], result["files"]["movies"]
    lines = _lines(ratings_path)
    assert lines[0] == "userId,movieId,rating,timestamp"
    assert all(re.fullmatch(r"\d+,\d+,[0-5]\.[05],\d{9,10}", line) for line in lines[1:])
    ratings = pd.read_csv(ratings_path)
    assert len(ratings) == result["rows"]
    assert ((ratings["rating"] * 2) % 1 == 0).all()
    assert ratings["rating"].between(0.5, 5.0).all()
    assert (ratings["rating"] == 0.5).sum() == result["half_star_min_ratings"] > 0
    assert 0.005 < result["half_star_min_ratings"] / result["rows"] < 0.03
    assert not ratings.duplicated(["userId", "movieId"]).any()
    assert ratings["movieId"].max() > 2 * ratings["movieId"].nunique()  # ids are sparse
    span = pd.to_datetime(ratings["timestamp"], unit="s")
    assert span.min().year == 1996 and span.max().year == 2018
    last_30_days = ratings["timestamp"] >= ratings["timestamp"].max() - 30 * 86_400
    assert ratings.loc[last_30_days, "userId"].nunique() < 0.1 * result["users"]
    _check_users(ratings, "userId", "timestamp", 1)

    movie_lines = _lines(movies_path)
    assert movie_lines[0] == "movieId,title,genres"
    quoted = [line for line in movie_lines if '"' in line]
    assert quoted and all(re.fullmatch(r'\d+,"[^"]+, (The|A) \(\d{4}\)",.+', q) for q in quoted)
    movies = pd.read_csv(movies_path)
    assert len(movies) == result["movies"] and movies["movieId"].is_unique
    assert set(ratings["movieId"]) <= set(movies["movieId"])
    assert len(movies) > ratings["movieId"].nunique()  # some movies are never rated
    assert movies["title"].str.fullmatch(r".+ \(\d{4}\)").all()
    genres = movies["genres"][movies["genres"] != NO_GENRES].str.split("|")
    assert genres.map(lambda g: set(g) <= set(GENRES)).all()
    assert (movies["genres"] == NO_GENRES).any()


def test_online_retail_invoices(written: dict[str, dict[str, Any]]) -> None:
    result = written["online_retail"]
    path = result["files"]["transactions"]
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
        "CustomerID", "Country",
    ]  # fmt: skip
    body = rows[1:]
    assert len(body) == result["rows"]
    assert all(re.fullmatch(r"C?\d{6}", r[0]) for r in body)
    assert all(re.fullmatch(r"\d{5}[A-Z]?|POST", r[1]) for r in body)
    assert sum(r[1] == "POST" for r in body) == result["postage_rows"] > 0
    assert all(r[7] != "United Kingdom" for r in body if r[1] == "POST")
    assert all(re.fullmatch(r"\d{1,2}/\d{1,2}/20(10|11) \d{1,2}:\d\d", r[4]) for r in body)
    assert all(r[6] == "" or re.fullmatch(r"1\d{4}\.0", r[6]) for r in body)
    assert sum(r[6] == "" for r in body) == result["guest_rows"] > 0
    purchases = sum(not r[0].startswith("C") and r[1] != "POST" for r in body)
    assert result["guest_rows"] / purchases == pytest.approx(0.25, abs=0.002)  # as published
    assert any("," in r[2] for r in body) and '",' in path.read_text()
    assert body[0][0] == "536365"

    frame = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str})
    cancel = frame["InvoiceNo"].str.startswith("C")
    assert cancel.sum() == result["cancellation_rows"] > 0
    assert (frame.loc[cancel, "Quantity"] < 0).all() and (frame.loc[~cancel, "Quantity"] > 0).all()
    assert frame.loc[cancel, "CustomerID"].notna().all()
    assert frame["InvoiceNo"].nunique() == result["invoices"]
    assert frame.groupby("StockCode")[["Description", "UnitPrice"]].nunique().max().max() == 1
    per_invoice = frame.groupby("InvoiceNo", sort=False).agg(
        lines=("StockCode", "size"),
        dates=("InvoiceDate", "nunique"),
        customers=("CustomerID", lambda c: c.fillna(-1).nunique()),
        when=("InvoiceDate", "first"),
    )
    assert per_invoice["lines"].between(1, 16).all()  # up to 15 products and a postage line
    assert (per_invoice["dates"] == 1).all() and (per_invoice["customers"] == 1).all()
    number = per_invoice.index.str.lstrip("C").astype(int)
    when = pd.to_datetime(per_invoice["when"], format="%m/%d/%Y %H:%M")
    assert number.is_monotonic_increasing and when.is_monotonic_increasing
    assert when.min() >= pd.Timestamp("2010-12-01") and when.max() < pd.Timestamp("2011-12-10")
    for invoice, lines in frame[cancel].groupby("InvoiceNo"):  # copies of an earlier invoice
        earlier = frame[
            ~cancel
            & (frame["CustomerID"] == lines["CustomerID"].iloc[0])
            & (frame["InvoiceNo"] < invoice[1:])
        ]
        assert set(lines["StockCode"]) <= set(earlier["StockCode"])
    seconds = (pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y %H:%M") - pd.Timestamp(0)).dt
    customers = frame.assign(t=seconds.total_seconds())[frame["CustomerID"].notna() & ~cancel]
    _check_users(customers, "CustomerID", "t", 1)


def test_retailrocket_events(written: dict[str, dict[str, Any]]) -> None:
    result = written["retailrocket"]
    path = result["files"]["events"]
    lines = _lines(path)
    assert lines[0] == "timestamp,visitorid,event,itemid,transactionid"
    pattern = r"\d{13},\d+,(view,\d+,|addtocart,\d+,|transaction,\d+,\d+)"
    assert all(re.fullmatch(pattern, line) for line in lines[1:])
    events = pd.read_csv(path)
    assert len(events) == result["rows"]
    assert events["event"].value_counts().to_dict() == result["events"]
    shares = events["event"].value_counts(normalize=True)
    assert 0.85 < shares["view"] < 0.91 and shares["transaction"] < shares["addtocart"]
    when = pd.to_datetime(events["timestamp"], unit="ms")
    assert when.min() >= pd.Timestamp("2015-05-03") and when.max() < pd.Timestamp("2015-09-19")
    assert events["visitorid"].max() > 10 * result["users"]

    first = events.groupby(["visitorid", "itemid", "event"])["timestamp"].min().unstack()
    carts = first.dropna(subset=["addtocart"])
    assert (carts["view"] < carts["addtocart"]).mean() > 0.9
    bought = first.dropna(subset=["transaction"])
    assert (bought["addtocart"] < bought["transaction"]).mean() > 0.9
    _check_users(events, "visitorid", "timestamp", 1000)


def test_sizes_can_be_overridden(tmp_path: Path) -> None:
    result = write_movielens_100k(tmp_path, n_users=50, n_items=40, n_rows=1_000)
    assert (result["rows"], result["users"], result["items"]) == (1_000, 50, 40)
