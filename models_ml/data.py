"""Read the training marts from the DuckDB warehouse, whole columns at a time.

The warehouse is opened read-only and closed before returning: other stages use the file, and
training never holds it open. Point in time: the rows are the marts as dbt built them; the
trainer splits them at its cutoff, and reads only catalog attributes (category, price) from
item_features, never its interaction aggregates (those include the test period).

Ids: the shop's user and item ids are strings (SKUs, UUIDs, ...). DuckDB turns them into dense
int64 codes (models_ml.ids.Vocabulary) over whole columns; the frames hold the codes, the
returned vocabularies the shop ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from models_ml.ids import Vocabulary
from recomart.core.schema import (
    CATEGORY,
    EVENT,
    INTERACTIONS_MART,
    ITEM,
    ITEM_FEATURES,
    MARTS_SCHEMA,
    QUANTITY,
    RATING,
    TIME,
    TITLE,
    USER,
    VALUE,
)

IS_IMPUTED = "is_rating_imputed"
LOAD_ID = "load_id"
PRICE = "price"
INTERACTION_COLUMNS = (USER, ITEM, EVENT, RATING, IS_IMPUTED, QUANTITY, VALUE, TIME, LOAD_ID)
CATALOG_COLUMNS = (ITEM, TITLE, CATEGORY, PRICE)
INTERACTIONS_TABLE = f"{MARTS_SCHEMA}.{INTERACTIONS_MART}"
CATALOG_TABLE = f"{MARTS_SCHEMA}.{ITEM_FEATURES}"
SOURCE_TABLES = (INTERACTIONS_TABLE, CATALOG_TABLE)


@dataclass(frozen=True)
class Marts:
    """What training reads: interaction rows, the catalog, the newest dlt load id, and the
    vocabularies of the ids. user_id and item_id in both frames are int64 codes of `users` and
    `items` (models_ml.ids), never the shop's ids."""

    interactions: pd.DataFrame  # INTERACTION_COLUMNS, one row per clean interaction
    catalog: pd.DataFrame  # CATALOG_COLUMNS, one row per catalog product
    latest_load_id: str | None
    users: Vocabulary  # the users of marts.interactions
    items: Vocabulary  # the items of marts.item_features and of marts.interactions

    @property
    def catalog_item_ids(self) -> pd.Series:
        """marts.item_features.item_id: every catalog product (codes)."""
        return self.catalog[ITEM]


# Codes are computed in SQL: the dense rank of the ids as text, minus 1. Casting to VARCHAR
# reads BIGINT and VARCHAR marts alike (an integer id becomes its decimal text).
USER_CODES = f"""
create temp table user_codes as
select {USER}, (dense_rank() over (order by {USER}) - 1)::bigint as code
from (select distinct {USER}::varchar as {USER} from {INTERACTIONS_TABLE})
"""
ITEM_CODES = f"""
create temp table item_codes as
select {ITEM}, (dense_rank() over (order by {ITEM}) - 1)::bigint as code
from (
    select {ITEM}::varchar as {ITEM} from {INTERACTIONS_TABLE}
    union
    select {ITEM}::varchar as {ITEM} from {CATALOG_TABLE}
)
"""
NULL_IDS = f"""
select
    (select count(*) from {INTERACTIONS_TABLE} where {USER} is null or {ITEM} is null),
    (select count(*) from {CATALOG_TABLE} where {ITEM} is null)
"""
VALUE_COLUMNS = [c for c in INTERACTION_COLUMNS if c not in (USER, ITEM)]
INTERACTIONS_SQL = f"""
select u.code as {USER}, i.code as {ITEM}, {", ".join(f"t.{c}" for c in VALUE_COLUMNS)}
from {INTERACTIONS_TABLE} as t
join user_codes as u on u.{USER} = t.{USER}::varchar
join item_codes as i on i.{ITEM} = t.{ITEM}::varchar
order by t.{TIME}, u.code, i.code, t.{EVENT}, t.{RATING}
"""
CATALOG_SQL = f"""
select i.code as {ITEM}, {", ".join(f"c.{col}" for col in CATALOG_COLUMNS if col != ITEM)}
from {CATALOG_TABLE} as c
join item_codes as i on i.{ITEM} = c.{ITEM}::varchar
order by i.code
"""


def read_marts(warehouse: str | Path) -> Marts:
    """Read marts.interactions and the catalog attributes from the warehouse file (read-only),
    ids replaced by their codes; the vocabularies hold the shop ids."""
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        raise FileNotFoundError(f"warehouse not found: {warehouse} (run the pipeline first)")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ((null_rows, null_items),) = con.sql(NULL_IDS).fetchall()
        if null_rows or null_items:
            raise ValueError(
                f"null ids in the marts: {null_rows} interactions, {null_items} catalog items"
            )
        con.execute(USER_CODES)
        con.execute(ITEM_CODES)
        # a fixed row order: the matrix (float sums), its hash and the model are reproducible
        interactions = con.sql(INTERACTIONS_SQL).df()
        catalog = con.sql(CATALOG_SQL).df()
        users = con.sql(f"select {USER}, code from user_codes order by code").fetchnumpy()
        items = con.sql(f"select {ITEM}, code from item_codes order by code").fetchnumpy()
    latest = interactions[LOAD_ID].max() if len(interactions) else None
    return Marts(
        interactions=interactions,
        catalog=catalog,
        latest_load_id=None if pd.isna(latest) else str(latest),
        # the SQL codes themselves: a vocabulary refuses ties (e.g. a case-blind collation)
        users=Vocabulary(users[USER], users["code"]),
        items=Vocabulary(items[ITEM], items["code"]),
    )
