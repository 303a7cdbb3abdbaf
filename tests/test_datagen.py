"""The generator: determinism, CSV format, defects as recorded, valid clean rows, structure."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from recomart.demo import datagen
from recomart_core import schema as s

SMALL = {"n_users": 300, "n_items": 80, "n_interactions": 6000, "days": 60}
START = "2026-05-01"
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
FAKE_STORE_CATEGORIES = {"men's clothing", "jewelery", "electronics", "women's clothing"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gen")
    manifest = datagen.generate(out, seed=7, start=START, defect_rate=0.05, **SMALL)
    return out, manifest


@pytest.fixture(scope="module")
def lines(generated: tuple[Path, dict]) -> list[str]:
    """The CSV's lines; lines[k] is file line k (header = line 1, lines[0] unused)."""
    out, _ = generated
    return ["", *(out / datagen.INTERACTIONS_FILE).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def rows(generated: tuple[Path, dict]) -> dict[int, dict[str, str]]:
    """Data rows read as text by pyarrow (no type inference), keyed by their line number."""
    out, _ = generated
    table = pacsv.read_csv(
        out / datagen.INTERACTIONS_FILE,
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in s.CSV_BASIC}, strings_can_be_null=False
        ),
    )
    return {k + 2: row for k, row in enumerate(table.to_pylist())}


@pytest.fixture(scope="module")
def defect_lines(generated: tuple[Path, dict]) -> dict[str, set[int]]:
    return {name: set(d["lines"]) for name, d in generated[1]["defects"].items()}


@pytest.fixture(scope="module")
def clean(rows: dict, defect_lines: dict) -> dict[int, dict[str, str]]:
    bad = set().union(*defect_lines.values())
    return {line: row for line, row in rows.items() if line not in bad}


@pytest.fixture(scope="module")
def products(generated: tuple[Path, dict]) -> list[dict]:
    return json.loads((generated[0] / datagen.CATALOG_FILE).read_text(encoding="utf-8"))


def _file_bytes(out: Path) -> list[bytes]:
    names = (datagen.INTERACTIONS_FILE, datagen.CATALOG_FILE, datagen.MANIFEST_FILE)
    return [(out / name).read_bytes() for name in names]


def _parses(text: str) -> bool:
    try:
        datetime.strptime(text, TS_FORMAT)
    except ValueError:
        return False
    return True


# --- determinism and format -------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        datagen.generate(tmp_path / name, seed=seed, **SMALL)
    a, b, c = (_file_bytes(tmp_path / name) for name in "abc")
    assert a == b
    assert a[0] != c[0]  # interactions
    assert a[1] != c[1]  # catalog


def test_manifest_file_is_the_returned_manifest(generated: tuple[Path, dict]) -> None:
    out, manifest = generated
    assert json.loads((out / datagen.MANIFEST_FILE).read_text()) == manifest
    assert manifest["seed"] == 7
    assert manifest["n_users"] == SMALL["n_users"]
    assert manifest["files"]["interactions"] == "interactions/interactions.csv"


def test_csv_is_plain_and_has_the_canonical_header(lines: list[str], generated) -> None:
    assert lines[1] == "user_id,item_id,rating,timestamp,event_type"
    assert len(lines) - 2 == generated[1]["total_rows"] == SMALL["n_interactions"]
    body = "\n".join(lines[2:])
    assert '"' not in body
    assert all(line.count(",") == 4 for line in lines[1:])
    raw = (generated[0] / datagen.INTERACTIONS_FILE).read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw


# --- defects ---------------------------------------------------------------------------------


def test_manifest_counts_add_up(generated: tuple[Path, dict], defect_lines: dict) -> None:
    manifest = generated[1]
    assert list(manifest["defects"]) == list(datagen.DEFECT_SHARES)
    counts = {name: d["count"] for name, d in manifest["defects"].items()}
    assert sum(counts.values()) == manifest["defect_rows"] == round(0.05 * 6000)
    assert manifest["clean_rows"] == 6000 - 300
    assert all(n > 0 for n in counts.values())
    for name, d in manifest["defects"].items():
        assert d["lines"] == sorted(set(d["lines"])), name
        assert len(d["lines"]) == d["count"]
        assert all(2 <= line <= 6001 for line in d["lines"])
    all_lines = [line for d in manifest["defects"].values() for line in d["lines"]]
    assert len(set(all_lines)) == len(all_lines)  # one defect per row


def test_each_listed_line_has_its_defect(rows: dict, lines: list[str], defect_lines: dict) -> None:
    for line in defect_lines[datagen.MISSING_RATING]:
        assert rows[line][s.CSV_RATING] == ""
    for line in defect_lines[datagen.RATING_OUT_OF_RANGE]:
        assert int(rows[line][s.CSV_RATING]) in datagen.OUT_OF_RANGE_RATINGS
    for line in defect_lines[datagen.UNKNOWN_ITEM]:
        assert int(rows[line][s.CSV_ITEM]) > SMALL["n_items"]
    for line in defect_lines[datagen.BAD_TIMESTAMP]:
        assert not _parses(rows[line][s.CSV_TIMESTAMP])
    for line in defect_lines[datagen.DUPLICATE]:
        assert lines[line] in lines[2:line]


def test_only_listed_lines_repeat_an_earlier_line(lines: list[str], defect_lines: dict) -> None:
    seen: set[str] = set()
    repeats = set()
    for number in range(2, len(lines)):
        if lines[number] in seen:
            repeats.add(number)
        seen.add(lines[number])
    assert repeats == defect_lines[datagen.DUPLICATE]


def test_defective_rows_are_otherwise_valid(rows: dict, defect_lines: dict) -> None:
    for name, numbers in defect_lines.items():
        for line in numbers:
            row = rows[line]
            assert 1 <= int(row[s.CSV_USER]) <= SMALL["n_users"]
            assert row[s.CSV_EVENT] in s.EVENT_TYPES
            if name != datagen.UNKNOWN_ITEM:
                assert 1 <= int(row[s.CSV_ITEM]) <= SMALL["n_items"]
            if name not in (datagen.MISSING_RATING, datagen.RATING_OUT_OF_RANGE):
                assert 1 <= int(row[s.CSV_RATING]) <= 5
            if name != datagen.BAD_TIMESTAMP:
                assert _parses(row[s.CSV_TIMESTAMP])


def test_bad_timestamps_fail_duckdb_too(rows: dict, defect_lines: dict) -> None:
    texts = [rows[line][s.CSV_TIMESTAMP] for line in defect_lines[datagen.BAD_TIMESTAMP]]
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    parsed = con.execute(
        "select count(try_cast(trim(t) as timestamptz)) from unnest(?::varchar[]) as u(t)", [texts]
    ).fetchone()[0]
    assert parsed == 0
    assert len(set(texts)) > 1  # several forms, not one fixed string


# --- clean rows ------------------------------------------------------------------------------


def test_clean_rows_are_valid(clean: dict) -> None:
    start = datetime.fromisoformat(START)
    end = start + timedelta(days=SMALL["days"])
    for row in clean.values():
        assert 1 <= int(row[s.CSV_USER]) <= SMALL["n_users"]
        assert 1 <= int(row[s.CSV_ITEM]) <= SMALL["n_items"]
        assert int(row[s.CSV_RATING]) in range(s.RATING_MIN, s.RATING_MAX + 1)
        assert start <= datetime.strptime(row[s.CSV_TIMESTAMP], TS_FORMAT) < end
        assert row[s.CSV_EVENT] in s.EVENT_TYPES


def test_clean_rows_are_sorted_by_time(clean: dict) -> None:
    times = [clean[line][s.CSV_TIMESTAMP] for line in sorted(clean)]
    assert times == sorted(times)


def test_activity_spans_the_period_with_a_daily_rhythm(clean: dict) -> None:
    stamps = [datetime.strptime(r[s.CSV_TIMESTAMP], TS_FORMAT) for r in clean.values()]
    days = Counter((t - datetime.fromisoformat(START)).days for t in stamps)
    assert set(days) == set(range(SMALL["days"]))
    hours = Counter(t.hour for t in stamps)
    assert hours[20] > 3 * hours[4]  # evening peak, night trough


# --- planted structure -----------------------------------------------------------------------


def test_users_concentrate_on_few_categories(clean: dict, products: list[dict]) -> None:
    category = {p["id"]: p["category"] for p in products}
    per_user: dict[str, Counter] = defaultdict(Counter)
    for row in clean.values():
        per_user[row[s.CSV_USER]][category[int(row[s.CSV_ITEM])]] += 1
    shares = [max(c.values()) / sum(c.values()) for c in per_user.values() if sum(c.values()) >= 10]
    n_categories = len(set(category.values()))
    assert np.mean(shares) > 3 / n_categories


def test_tastes_are_stable_over_time(clean: dict, products: list[dict]) -> None:
    """A user's favourite category in the first half is mostly still it in the second half."""
    category = {p["id"]: p["category"] for p in products}
    middle = (datetime.fromisoformat(START) + timedelta(days=SMALL["days"] / 2)).strftime(TS_FORMAT)
    halves: dict[str, list[Counter]] = defaultdict(lambda: [Counter(), Counter()])
    for row in clean.values():
        half = int(row[s.CSV_TIMESTAMP] >= middle)
        halves[row[s.CSV_USER]][half][category[int(row[s.CSV_ITEM])]] += 1
    active = [h for h in halves.values() if sum(h[0].values()) >= 8 and sum(h[1].values()) >= 8]
    same = [h[0].most_common(1)[0][0] == h[1].most_common(1)[0][0] for h in active]
    assert len(active) > 50
    assert np.mean(same) > 0.7


def test_popularity_is_long_tailed_with_cold_items(clean: dict, generated) -> None:
    counts = Counter(int(row[s.CSV_ITEM]) for row in clean.values())
    per_item = sorted((counts.get(i, 0) for i in range(1, SMALL["n_items"] + 1)), reverse=True)
    top_tenth = per_item[: SMALL["n_items"] // 10]
    assert sum(top_tenth) / sum(per_item) > 0.3  # uniform would give 0.1
    cold = SMALL["n_items"] - len(counts)
    assert cold > 0
    # The manifest counts items absent from the whole file (defective rows included).
    assert generated[1]["cold_items"] <= cold


def test_user_activity_is_heavy_tailed(clean: dict) -> None:
    per_user = np.array(list(Counter(row[s.CSV_USER] for row in clean.values()).values()))
    assert per_user.max() > 5 * np.median(per_user)


def test_purchases_are_rarer_and_better_liked(clean: dict) -> None:
    by_event: dict[str, list[int]] = defaultdict(list)
    for row in clean.values():
        by_event[row[s.CSV_EVENT]].append(int(row[s.CSV_RATING]))
    view, cart, purchase = (by_event[e] for e in s.EVENT_TYPES)
    assert len(view) > len(cart) > len(purchase) > 0
    assert np.mean(purchase) > np.mean(view) + 0.5


def test_some_users_repeat_items(clean: dict) -> None:
    pairs = Counter((row[s.CSV_USER], row[s.CSV_ITEM]) for row in clean.values())
    assert any(n > 1 for n in pairs.values())


# --- catalog ---------------------------------------------------------------------------------


def test_catalog_has_the_fake_store_shape(products: list[dict]) -> None:
    assert [p["id"] for p in products] == list(range(1, SMALL["n_items"] + 1))
    for p in products:
        assert list(p) == ["id", "title", "price", "description", "category", "image", "rating"]
        assert isinstance(p["title"], str) and p["title"]
        assert isinstance(p["description"], str) and p["description"]
        assert isinstance(p["price"], float) and p["price"] > 0
        assert round(p["price"], 2) == p["price"]
        assert p["image"] == f"https://images.recomart.example/{p['id']}.jpg"
        assert list(p["rating"]) == ["rate", "count"]
        rate = p["rating"]["rate"]
        assert 1 <= rate <= 5 and round(rate, 1) == rate
        assert isinstance(p["rating"]["count"], int) and p["rating"]["count"] >= 0


def test_catalog_categories_are_uneven_and_priced_apart(products: list[dict]) -> None:
    sizes = Counter(p["category"] for p in products)
    assert 6 <= len(sizes) <= 8
    assert set(sizes) >= FAKE_STORE_CATEGORIES
    assert max(sizes.values()) >= 2 * min(sizes.values())
    prices = defaultdict(list)
    for p in products:
        prices[p["category"]].append(p["price"])
    assert np.median(prices["electronics"]) > 3 * np.median(prices["books"])


def test_catalog_does_not_depend_on_interaction_count(tmp_path: Path) -> None:
    datagen.generate(tmp_path / "a", seed=1, n_users=50, n_items=40, n_interactions=500)
    datagen.generate(tmp_path / "b", seed=1, n_users=90, n_items=40, n_interactions=900)
    a, b = ((tmp_path / x / datagen.CATALOG_FILE).read_bytes() for x in "ab")
    assert a == b


@pytest.mark.parametrize(
    "bad",
    [{"n_users": 0}, {"n_items": 0}, {"n_interactions": 0}, {"days": 0}, {"defect_rate": 0.9}],
)
def test_rejects_bad_arguments(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ValueError):
        datagen.generate(tmp_path, **{**SMALL, **bad})
