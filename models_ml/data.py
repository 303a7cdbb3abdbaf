"""What training reads, through the feature store's point-in-time API.

`FeatureStore.training_set(as_of)` (feature_store.training) reads marts.interactions and the
catalog's item attributes whole columns at a time, the warehouse opened read-only and closed
before returning: other stages use the file, and training never holds it open. Point in time:
the interactions known at as_of (all of them by default; the trainer then splits them at its own
cutoff), and only catalog attributes (title, category, price) of item_features, never its
interaction aggregates (those include the test period).

Ids: the shop's user and item ids are strings (SKUs, UUIDs, ...). The store turns them into dense
int64 codes over whole columns; the frames hold the codes, the vocabularies (models_ml.ids) the
shop ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from feature_store import FeatureStore, TrainingSet
from feature_store.training import (
    CATALOG_TABLE,
    INTERACTION_COLUMNS,
    INTERACTIONS_TABLE,
    IS_IMPUTED,
    ITEM_ATTRIBUTES,
    LOAD_ID,
    SOURCE_TABLES,
)
from models_ml.ids import Vocabulary
from recomart_core.schema import ITEM

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_TABLE",
    "INTERACTIONS_TABLE",
    "INTERACTION_COLUMNS",
    "IS_IMPUTED",
    "LOAD_ID",
    "SOURCE_TABLES",
    "Marts",
    "from_training_set",
    "read_marts",
    "read_training_data",
]
CATALOG_COLUMNS = ITEM_ATTRIBUTES  # item_id, title, category, price


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


def from_training_set(data: TrainingSet) -> Marts:
    """The feature store's training set with vocabularies over its codes."""
    interactions = data.interactions
    latest = interactions[LOAD_ID].max() if len(interactions) else None
    return Marts(
        interactions=interactions,
        catalog=data.items,
        latest_load_id=None if pd.isna(latest) else str(latest),
        # the SQL codes themselves: a vocabulary refuses ties (e.g. a case-blind collation)
        users=Vocabulary(data.user_names, data.user_codes),
        items=Vocabulary(data.item_names, data.item_codes),
    )


def read_training_data(store: FeatureStore, as_of: datetime | str | None = None) -> Marts:
    """The store's training set as of as_of (all interactions when None)."""
    return from_training_set(store.training_set(as_of))


def read_marts(warehouse: str | Path, as_of: datetime | str | None = None) -> Marts:
    """read_training_data from the warehouse file (read-only), through its feature store."""
    return read_training_data(FeatureStore(warehouse=warehouse), as_of)
