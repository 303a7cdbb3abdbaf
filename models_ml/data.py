"""Read the training marts from the DuckDB warehouse, whole columns at a time.

The warehouse is opened read-only and closed before returning: other stages use the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from recomart.schema import (
    EVENT,
    INTERACTIONS_MART,
    ITEM,
    ITEM_FEATURES,
    MARTS_SCHEMA,
    RATING,
    TIME,
    USER,
)

INTERACTION_COLUMNS = (USER, ITEM, EVENT, RATING, TIME)
LOAD_ID = "load_id"


@dataclass(frozen=True)
class Marts:
    """What training reads: interaction rows, catalog item ids, the newest dlt load id."""

    interactions: pd.DataFrame  # INTERACTION_COLUMNS, one row per clean interaction
    catalog_item_ids: pd.Series  # marts.item_features.item_id: every catalog product
    latest_load_id: str | None


def read_marts(warehouse: str | Path) -> Marts:
    """Read marts.interactions and the catalog's item ids from the warehouse file."""
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        raise FileNotFoundError(f"warehouse not found: {warehouse} (run the pipeline first)")
    interactions_table = f"{MARTS_SCHEMA}.{INTERACTIONS_MART}"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        interactions = con.sql(
            f"select {', '.join(INTERACTION_COLUMNS)} from {interactions_table}"
        ).df()
        item_ids = con.sql(f"select {ITEM} from {MARTS_SCHEMA}.{ITEM_FEATURES}").df()[ITEM]
        ((latest_load_id,),) = con.sql(
            f"select max({LOAD_ID}) from {interactions_table}"
        ).fetchall()
    return Marts(
        interactions=interactions, catalog_item_ids=item_ids, latest_load_id=latest_load_id
    )
