"""Batch recommendations for every user, written back to the warehouse for analysts and the API.

Table recommendations.user_recommendations: one row per (user_id, rank), columns user_id, rank,
item_id, score, title, category, price, model_name, model_version, run_id, generated_at; user_id
and item_id are the shop's ids (VARCHAR); title, category and price are the item attributes the
training set brought from the feature store (the ones the model package carries). Written in one
short read-write transaction after training (replace the whole table; one insert from Arrow), so
the warehouse is never held open while a model fits and readers see the old table or the new one,
never a mix.

Engine "spark": the same rows (write_recommendations_spark) written by training's Spark session as
Parquet into the folder Spark's warehouse gives the table recommendations.user_recommendations,
recomart_core.engine.spark_table_path(cfg, "recommendations", "user_recommendations") =
<paths.spark>/warehouse/recommendations.db/user_recommendations/ (Spark's overwrite: the folder is
replaced; a reader during the write may find it empty, never a mix). Spark (and dbt) read it as a
table through `create table if not exists recommendations.user_recommendations using parquet
location '<folder>'`, or spark.read.parquet(folder); DuckDB with read_parquet('<folder>/*.parquet').
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from models_ml import rules as engine
from models_ml.ranking import PAD_ITEM, PAD_SCORE, chunk_rows
from models_ml.recommender import Recommender
from models_ml.rules import ItemTable
from recomart_core.rulesets import NO_RULES, Rules
from recomart_core.schema import (
    CATEGORY,
    ITEM,
    PRICE,
    RECOMMENDATIONS_SCHEMA,
    TITLE,
    USER_RECOMMENDATIONS,
)

if TYPE_CHECKING:  # pyspark only on engine spark
    from pyspark.sql import SparkSession

RANK = "rank"
SCORE = "score"
ATTRIBUTES = (TITLE, CATEGORY, PRICE)
TABLE = f"{RECOMMENDATIONS_SCHEMA}.{USER_RECOMMENDATIONS}"


def ruled_recommendations(
    model: Recommender,
    k: int,
    rules: Rules,
    items: pd.DataFrame | None = None,
    now: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """recommend_batch(model.user_ids, k) under rules (models_ml.rules, the engine the API
    uses): every user's scores over every item, a chunk of users at a time, then the rules;
    items: the attributes (shop ids) the filters read; now: seconds since the epoch (the
    exclude_bought window's end; default: now)."""
    codes = model.user_ids
    rec_codes = model.rec_item_codes
    table = ItemTable(
        model.items.decode(rec_codes).tolist(), items, vectors=model.rec_item_vectors,
        categories=model.item_categories[np.searchsorted(model.item_ids, rec_codes)],
        popularity=model.rec_popularity,
    )  # fmt: skip
    now = datetime.now(UTC).timestamp() if now is None else now
    out_items = np.full((len(codes), k), PAD_ITEM, dtype=np.int64)
    out_scores = np.full((len(codes), k), PAD_SCORE, dtype=np.float32)
    step = chunk_rows(len(rec_codes))
    for start in range(0, len(codes), step):
        part = codes[start : start + step]
        _, scores = model.score_rows(part)
        bought = model.purchase_times(part) if rules.exclude_bought != "never" else None
        lists = engine.rank(scores, table, rules, k, bought=bought, now=now)
        for offset, ranked in enumerate(lists):
            out_items[start + offset, : len(ranked)] = rec_codes[ranked.columns]
            out_scores[start + offset, : len(ranked)] = ranked.scores
    return out_items, out_scores


def recommendations_tables(
    model: Recommender,
    k: int,
    items: pd.DataFrame | None = None,
    recommended: tuple[np.ndarray, np.ndarray] | None = None,
    rules: Rules = NO_RULES,
) -> dict[str, pa.Table]:
    """Arrow tables for one insert: `recs` (user_code, rank, item_code, score: top-k of every
    user the model knows, what [train] repeatable_events excludes left out, no padding),
    `users` and `items` (code, name: the shop ids) and `attributes` (item_id and title,
    category, price where items has them).
    recommended: model.recommend_batch(model.user_ids, k) when the caller has it already;
    rules: the rule set's default surface (models_ml.rules): when it has any, the lists are
    ruled_recommendations' (recommended is not used)."""
    codes = model.user_ids
    if not rules.empty:
        recommended = ruled_recommendations(model, k, rules, items)
    item_codes, scores = recommended or model.recommend_batch(codes, k, exclude_known=True)
    kept = item_codes.ravel() != PAD_ITEM
    recs = pa.table(
        {
            "user_code": np.repeat(codes, k)[kept],
            RANK: np.tile(np.arange(1, k + 1, dtype=np.int32), len(codes))[kept],
            "item_code": item_codes.ravel()[kept],
            SCORE: scores.ravel()[kept].astype(np.float64),
        }
    )
    item_ids = model.item_ids
    if items is None:
        items = pd.DataFrame({ITEM: pd.Series([], dtype=object)})
    attributes = items[[ITEM, *(c for c in ATTRIBUTES if c in items)]].drop_duplicates(ITEM)
    return {
        "recs": recs,
        "users": pa.table(
            {"code": codes, "name": pa.array(model.users.decode(codes), pa.string())}
        ),
        "items": pa.table(
            {"code": item_ids, "name": pa.array(model.items.decode(item_ids), pa.string())}
        ),
        "attributes": pa.Table.from_pandas(
            attributes.assign(**{ITEM: attributes[ITEM].astype(str)}), preserve_index=False
        ),
    }


def _rows_sql(tables: dict[str, pa.Table]) -> str:
    """The table's rows as one SELECT over recommendations_tables registered as batch_<name>;
    parameters: model_name, model_version, run_id, generated_at (naive UTC)."""
    present = set(tables["attributes"].column_names)
    columns = ", ".join(
        f"a.{c}::{kind} as {c}" if c in present else f"null::{kind} as {c}"
        for c, kind in zip(ATTRIBUTES, ("varchar", "varchar", "double"), strict=True)
    )
    return f"""
        select u.name as user_id, r.rank::integer as rank, i.name as item_id,
               r.score::double as score, {columns},
               ?::varchar as model_name, ?::varchar as model_version,
               ?::varchar as run_id, ?::timestamp as generated_at
        from batch_recs as r
        join batch_users as u on u.code = r.user_code
        join batch_items as i on i.code = r.item_code
        left join batch_attributes as a on a.{ITEM} = i.name
        order by user_id, rank
    """


def write_recommendations(
    warehouse: str | Path,
    model: Recommender,
    k: int,
    model_name: str,
    model_version: str,
    run_id: str,
    items: pd.DataFrame | None = None,
    recommended: tuple[np.ndarray, np.ndarray] | None = None,
    rules: Rules = NO_RULES,
) -> int:
    """Replace recommendations.user_recommendations with the top-k of every user the model
    knows, in one transaction (one insert from Arrow; ids and attributes joined by DuckDB);
    items: the item attributes keyed by shop item id (models_ml.package.shop_items);
    recommended, rules: as recommendations_tables takes them. Row count."""
    tables = recommendations_tables(model, k, items, recommended, rules)
    params = [model_name, str(model_version), run_id, datetime.now(UTC).replace(tzinfo=None)]
    with duckdb.connect(str(warehouse)) as con:
        for name, table in tables.items():
            con.register(f"batch_{name}", table)
        con.execute("begin transaction")
        try:
            con.execute(f"create schema if not exists {RECOMMENDATIONS_SCHEMA}")
            con.execute(f"create or replace table {TABLE} as {_rows_sql(tables)}", params)
            rows = con.execute(f"select count(*) from {TABLE}").fetchone()[0]
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            for name in tables:
                con.unregister(f"batch_{name}")
    return rows


def write_recommendations_spark(
    spark: SparkSession,
    folder: str | Path,
    model: Recommender,
    k: int,
    model_name: str,
    model_version: str,
    run_id: str,
    items: pd.DataFrame | None = None,
    recommended: tuple[np.ndarray, np.ndarray] | None = None,
    rules: Rules = NO_RULES,
) -> int:
    """write_recommendations' rows (the same SELECT, run by an in-memory DuckDB over Arrow)
    written by `spark` as Parquet into `folder` (replaced: module doc); generated_at becomes a
    Spark timestamp (an instant: the naive UTC time read in the session's time zone, UTC under
    recomart_core.engine). Row count."""
    tables = recommendations_tables(model, k, items, recommended, rules)
    params = [model_name, str(model_version), run_id, datetime.now(UTC).replace(tzinfo=None)]
    with duckdb.connect() as con:
        for name, table in tables.items():
            con.register(f"batch_{name}", table)
        rows = con.sql(_rows_sql(tables), params=params).to_arrow_table()
    spark.createDataFrame(rows).write.mode("overwrite").parquet(str(folder))
    return rows.num_rows
