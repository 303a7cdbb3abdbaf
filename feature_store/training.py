"""Training sets: the interactions known at a point in time and the item attributes, read whole
columns at a time (DuckDB into numpy/pandas, no per-row Python).

training_set(con, as_of) gives what models_ml trains on: every clean interaction with event_at <=
as_of (all of them when as_of is None; the same rule as the dbt var as_of), and the catalog's
attributes (title, category, price: they describe items, not interactions, and are read as they
are now; never item_features' interaction aggregates, which would include later events). The
shop's user and item ids are strings (SKUs, UUIDs, ...); DuckDB turns them into dense int64 codes
(the dense rank of the id as text, minus 1) over whole columns: the frames hold the codes, the
returned (names, codes) arrays say which ids they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from feature_store.errors import utc_naive
from recomart_core.frames import to_frame
from recomart_core.schema import (
    CATEGORY,
    EVENT,
    INTERACTIONS_MART,
    ITEM,
    ITEM_FEATURES,
    MARTS_SCHEMA,
    PRICE,
    QUANTITY,
    RATING,
    TIME,
    TITLE,
    USER,
    VALUE,
)

IS_IMPUTED = "is_rating_imputed"
LOAD_ID = "load_id"
INTERACTION_COLUMNS = (USER, ITEM, EVENT, RATING, IS_IMPUTED, QUANTITY, VALUE, TIME, LOAD_ID)
ITEM_ATTRIBUTES = (ITEM, TITLE, CATEGORY, PRICE)
INTERACTIONS_TABLE = f"{MARTS_SCHEMA}.{INTERACTIONS_MART}"
CATALOG_TABLE = f"{MARTS_SCHEMA}.{ITEM_FEATURES}"
SOURCE_TABLES = (INTERACTIONS_TABLE, CATALOG_TABLE)


@dataclass(frozen=True)
class TrainingSet:
    """What training reads. user_id and item_id in both frames are int64 codes; user_names[i]
    is the shop id of code user_codes[i] (the same for items)."""

    interactions: pd.DataFrame  # INTERACTION_COLUMNS, one row per clean interaction
    items: pd.DataFrame  # ITEM_ATTRIBUTES, one row per catalog product
    user_names: np.ndarray
    user_codes: np.ndarray
    item_names: np.ndarray
    item_codes: np.ndarray
    as_of: datetime | None = None


def _rows(as_of: datetime | None) -> str:
    """The interactions known at as_of, as a FROM item (the literal comes from a datetime)."""
    if as_of is None:
        return INTERACTIONS_TABLE
    return f"(select * from {INTERACTIONS_TABLE} where {TIME} <= timestamp '{as_of.isoformat()}')"


def _statements(rows: str) -> dict[str, str]:
    value_columns = [c for c in INTERACTION_COLUMNS if c not in (USER, ITEM)]
    return {
        "null_ids": f"""
            select
                (select count(*) from {rows} where {USER} is null or {ITEM} is null),
                (select count(*) from {CATALOG_TABLE} where {ITEM} is null)
        """,
        # Casting to VARCHAR reads BIGINT and VARCHAR marts alike (an integer id is its text).
        "user_codes": f"""
            create or replace temp table user_codes as
            select {USER}, (dense_rank() over (order by {USER}) - 1)::bigint as code
            from (select distinct {USER}::varchar as {USER} from {rows})
        """,
        "item_codes": f"""
            create or replace temp table item_codes as
            select {ITEM}, (dense_rank() over (order by {ITEM}) - 1)::bigint as code
            from (
                select {ITEM}::varchar as {ITEM} from {rows}
                union
                select {ITEM}::varchar as {ITEM} from {CATALOG_TABLE}
            )
        """,
        # a fixed row order: the matrix (float sums), its hash and the model are reproducible
        "interactions": f"""
            select u.code as {USER}, i.code as {ITEM}, {", ".join(f"t.{c}" for c in value_columns)}
            from {rows} as t
            join user_codes as u on u.{USER} = t.{USER}::varchar
            join item_codes as i on i.{ITEM} = t.{ITEM}::varchar
            order by t.{TIME}, u.code, i.code, t.{EVENT}, t.{RATING}
        """,
        "items": f"""
            select i.code as {ITEM}, {", ".join(f"c.{col}" for col in ITEM_ATTRIBUTES[1:])}
            from {CATALOG_TABLE} as c
            join item_codes as i on i.{ITEM} = c.{ITEM}::varchar
            order by i.code
        """,
    }


def training_set(
    con: duckdb.DuckDBPyConnection, as_of: datetime | str | None = None
) -> TrainingSet:
    """The interactions known at as_of and the item attributes, ids as codes (module doc)."""
    as_of = None if as_of is None else utc_naive(as_of)
    sql = _statements(_rows(as_of))
    ((null_rows, null_items),) = con.sql(sql["null_ids"]).fetchall()
    if null_rows or null_items:
        raise ValueError(
            f"null ids in the marts: {null_rows} interactions, {null_items} catalog items"
        )
    con.execute(sql["user_codes"])
    con.execute(sql["item_codes"])
    interactions = to_frame(con.sql(sql["interactions"]))
    items = to_frame(con.sql(sql["items"]))
    users = con.sql(f"select {USER}, code from user_codes order by code").fetchnumpy()
    vocabulary = con.sql(f"select {ITEM}, code from item_codes order by code").fetchnumpy()
    return TrainingSet(
        interactions=interactions,
        items=items,
        user_names=users[USER],
        user_codes=users["code"],
        item_names=vocabulary[ITEM],
        item_codes=vocabulary["code"],
        as_of=as_of,
    )


def item_attributes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """item_id (the shop's id, as text), title, category, price of every catalog product."""
    others = ", ".join(ITEM_ATTRIBUTES[1:])
    return con.sql(
        f"select {ITEM}::varchar as {ITEM}, {others} from {CATALOG_TABLE} order by {ITEM}"
    ).df()
