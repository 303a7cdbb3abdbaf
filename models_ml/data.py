"""Read the training marts from the DuckDB warehouse, whole columns at a time.

The warehouse is opened read-only and closed before returning: other stages use the file, and
training never holds it open. Point in time: the rows are the marts as dbt built them; the
trainer splits them at its cutoff, and reads only catalog attributes (category, price) from
item_features, never its interaction aggregates (those include the test period).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from recomart.schema import (
    CATEGORY,
    EVENT,
    INTERACTIONS_MART,
    ITEM,
    ITEM_FEATURES,
    MARTS_SCHEMA,
    RATING,
    TIME,
    TITLE,
    USER,
)

IS_IMPUTED = "is_rating_imputed"
LOAD_ID = "load_id"
PRICE = "price"
INTERACTION_COLUMNS = (USER, ITEM, EVENT, RATING, IS_IMPUTED, TIME, LOAD_ID)
CATALOG_COLUMNS = (ITEM, TITLE, CATEGORY, PRICE)
INTERACTIONS_TABLE = f"{MARTS_SCHEMA}.{INTERACTIONS_MART}"
CATALOG_TABLE = f"{MARTS_SCHEMA}.{ITEM_FEATURES}"
SOURCE_TABLES = (INTERACTIONS_TABLE, CATALOG_TABLE)


@dataclass(frozen=True)
class Marts:
    """What training reads: interaction rows, the catalog, the newest dlt load id."""

    interactions: pd.DataFrame  # INTERACTION_COLUMNS, one row per clean interaction
    catalog: pd.DataFrame  # CATALOG_COLUMNS, one row per catalog product
    latest_load_id: str | None

    @property
    def catalog_item_ids(self) -> pd.Series:
        """marts.item_features.item_id: every catalog product."""
        return self.catalog[ITEM]


def read_marts(warehouse: str | Path) -> Marts:
    """Read marts.interactions and the catalog attributes from the warehouse file (read-only)."""
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        raise FileNotFoundError(f"warehouse not found: {warehouse} (run the pipeline first)")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        interactions = con.sql(
            f"select {', '.join(INTERACTION_COLUMNS)} from {INTERACTIONS_TABLE}"
            # a fixed row order: the matrix (float sums), its hash and the model are reproducible
            f" order by {TIME}, {USER}, {ITEM}, {EVENT}, {RATING}"
        ).df()
        catalog = con.sql(
            f"select {', '.join(CATALOG_COLUMNS)} from {CATALOG_TABLE} order by {ITEM}"
        ).df()
    latest = interactions[LOAD_ID].max() if len(interactions) else None
    return Marts(
        interactions=interactions,
        catalog=catalog,
        latest_load_id=None if pd.isna(latest) else str(latest),
    )
