"""Batch recommendations for every user, written back to the warehouse for analysts and the API.

Table recommendations.user_recommendations: one row per (user_id, rank), columns user_id, rank,
item_id, score, title, category, price, model_name, model_version, run_id, generated_at; user_id
and item_id are the shop's ids (VARCHAR); title, category and price are the item attributes the
training set brought from the feature store (the ones the model package carries). Written in one
short
read-write transaction after training (replace the whole table), so the warehouse is never held
open while a model fits and readers see the old table or the new one, never a mix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from models_ml.ranking import PAD_ITEM
from models_ml.recommender import MatrixFactorizationRecommender
from recomart.core.schema import (
    CATEGORY,
    ITEM,
    PRICE,
    RECOMMENDATIONS_SCHEMA,
    TITLE,
    USER,
    USER_RECOMMENDATIONS,
)

RANK = "rank"
SCORE = "score"
ATTRIBUTES = (TITLE, CATEGORY, PRICE)
TABLE = f"{RECOMMENDATIONS_SCHEMA}.{USER_RECOMMENDATIONS}"


def recommendations_frame(
    model: MatrixFactorizationRecommender,
    k: int,
    model_name: str,
    model_version: str,
    run_id: str,
    user_ids: np.ndarray | None = None,
    items: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top-k for every user the model knows (or the shop user ids user_ids), known items
    excluded, no padding; user_id and item_id are shop ids (str). items: the item attributes
    keyed by shop item id (models_ml.package.shop_items); without them title, category and price
    are null."""
    if user_ids is None:
        codes = model.user_ids
        names = model.users.decode(codes)
    else:
        names = np.asarray(user_ids, dtype=object)
        codes = model.users.encode(names)
    item_codes, scores = model.recommend_batch(codes, k, exclude_known=True)
    kept = item_codes.ravel() != PAD_ITEM
    frame = pd.DataFrame(
        {
            USER: np.repeat(names, k)[kept],
            RANK: np.tile(np.arange(1, k + 1, dtype=np.int32), len(codes))[kept],
            ITEM: model.items.decode(item_codes.ravel()[kept]),
            SCORE: scores.ravel()[kept].astype(np.float64),
        }
    )
    if items is not None:
        attributes = items[[ITEM, *(c for c in ATTRIBUTES if c in items)]].drop_duplicates(ITEM)
        attributes = attributes.assign(**{ITEM: attributes[ITEM].astype(str).astype(object)})
        frame = frame.merge(attributes, on=ITEM, how="left")  # keeps the frame's row order
    for column in ATTRIBUTES:
        if column not in frame:
            frame[column] = None
    frame["model_name"] = model_name
    frame["model_version"] = str(model_version)
    frame["run_id"] = run_id
    frame["generated_at"] = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    return frame


def write_recommendations(warehouse: str | Path, frame: pd.DataFrame) -> int:
    """Replace recommendations.user_recommendations with frame in one transaction; row count."""
    with duckdb.connect(str(warehouse)) as con:
        con.register("recommendations_df", frame)
        con.execute("begin transaction")
        try:
            con.execute(f"create schema if not exists {RECOMMENDATIONS_SCHEMA}")
            con.execute(
                f"""
                create or replace table {TABLE} as
                select user_id::varchar as user_id, rank::integer as rank,
                       item_id::varchar as item_id, score::double as score,
                       title::varchar as title, category::varchar as category,
                       price::double as price, model_name, model_version, run_id,
                       generated_at::timestamp as generated_at
                from recommendations_df
                order by user_id, rank
                """
            )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            con.unregister("recommendations_df")
    return len(frame)
