"""The catalog listing as an Arrow table: flat columns named as dlt names them, the row hash."""

from __future__ import annotations

import pyarrow as pa

from dlt_pipelines.catalog.table import listing_table

PRODUCTS = [
    {"id": 1, "title": "A", "price": 2.5, "rating": {"rate": 4.0, "count": 3}},
    {"id": 2, "title": "B", "price": 3.0, "rating": None},
    {"id": 3, "title": None, "price": 1, "rating": {"rate": 1.5, "count": 0}, "extra": "x"},
]
IDS = ["1", "2", "3"]


def test_nested_objects_become_columns_and_ids_text() -> None:
    table = listing_table(PRODUCTS, IDS)

    assert table.column_names == [
        "id", "title", "price", "rating__rate", "rating__count", "extra", "_dlt_id",
    ]  # fmt: skip
    assert table.column("id").to_pylist() == IDS
    assert table.column("rating__rate").to_pylist() == [4.0, None, 1.5]
    assert table.column("rating__count").to_pylist() == [3, None, 0]
    assert table.column("extra").to_pylist() == [None, None, "x"]
    assert table.schema.field("price").type == pa.float64()
    assert not table.schema.field("_dlt_id").nullable


def test_the_row_hash_follows_the_values_not_the_key_order() -> None:
    hashes = listing_table(PRODUCTS, IDS).column("_dlt_id").to_pylist()
    reordered = [dict(reversed(p.items())) for p in PRODUCTS]
    changed = [dict(p) for p in PRODUCTS]
    changed[1]["rating"] = {"rate": 2.0, "count": None}

    assert len(set(hashes)) == 3
    assert listing_table(reordered, IDS).column("_dlt_id").to_pylist() == hashes
    after = listing_table(changed, IDS).column("_dlt_id").to_pylist()
    assert (after[0], after[2]) == (hashes[0], hashes[2]) and after[1] != hashes[1]


def test_what_arrow_cannot_hold_flat_is_left_to_dlt() -> None:
    assert listing_table([{"id": 1, "price": 2.5}, {"id": 2, "price": "n/a"}], ["1", "2"]) is None
    assert listing_table([{"id": 1, "tags": ["a"]}], ["1"]) is None
    assert listing_table([{"id": 1, "x": {"y": [1, 2]}}], ["1"]) is None
