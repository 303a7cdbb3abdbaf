"""Synthetic marts with planted structure, for tests and development (not pipeline data).

Users belong to taste groups; items belong to the same groups and have long-tail
popularity. Most interactions of a user fall in their group's items, so a collaborative model
should beat global popularity clearly. Timestamps are uniform over `days` days.

planted_interactions returns integer ids (what the numerical core and its tests use); the
warehouse that write_marts writes holds them as the shop's text ids (VARCHAR), like the dbt
marts: user 42 is "u0042", item 42 is "SKU-0042" (shop_ids).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from recomart_core.schema import (
    CATEGORY,
    EVENT,
    EVENT_TYPES,
    INTERACTIONS_MART,
    ITEM,
    ITEM_FEATURES,
    MARTS_SCHEMA,
    RATING,
    TIME,
    USER,
)

EVENT_SHARES = (0.75, 0.17, 0.08)  # view, add_to_cart, purchase


def planted_interactions(
    n_users: int = 600,
    n_items: int = 300,
    n_groups: int = 4,
    n_interactions: int = 20_000,
    taste: float = 0.85,
    days: int = 184,
    start: str = "2026-05-01",
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, items): rows shaped like marts.interactions, and the item catalog.

    taste is the share of a user's interactions within their own group's items. User and item
    ids start at 1 and are shuffled against the group structure.
    """
    rng = np.random.default_rng(seed)
    item_ids = rng.permutation(n_items) + 1
    item_group = np.arange(n_items) % n_groups
    popularity = 1.0 / (rng.permutation(n_items) + 1.0) ** 0.9  # long tail
    user_ids = rng.permutation(n_users) + 1
    user_group = rng.integers(0, n_groups, n_users)
    activity = rng.lognormal(0.0, 1.0, n_users)

    users = rng.choice(n_users, size=n_interactions, p=activity / activity.sum())
    in_taste = rng.random(n_interactions) < taste
    items = rng.choice(n_items, size=n_interactions, p=popularity / popularity.sum())
    for group in range(n_groups):
        members = np.flatnonzero(item_group == group)
        rows = np.flatnonzero(in_taste & (user_group[users] == group))
        weights = popularity[members] / popularity[members].sum()
        items[rows] = rng.choice(members, size=len(rows), p=weights)

    imputed = rng.random(n_interactions) < 0.3
    rating = np.where(
        in_taste, rng.integers(3, 6, n_interactions), rng.integers(1, 4, n_interactions)
    )
    seconds = np.sort(rng.integers(0, days * 86_400, n_interactions))
    event_at = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")
    categories = np.array([f"group_{g}" for g in range(n_groups)])
    interactions = pd.DataFrame(
        {
            "interaction_key": "syn" + pd.Series(np.arange(n_interactions)).astype(str),
            USER: user_ids[users].astype(np.int64),
            ITEM: item_ids[items].astype(np.int64),
            CATEGORY: categories[item_group[items]],
            EVENT: rng.choice(np.array(EVENT_TYPES), size=n_interactions, p=EVENT_SHARES),
            RATING: np.where(imputed, 3.0, rating).astype(np.float64),
            "is_rating_imputed": imputed,
            TIME: event_at,
            "load_id": "synthetic",
        }
    )
    catalog = pd.DataFrame(
        {
            ITEM: item_ids.astype(np.int64),
            "title": "Product " + pd.Series(item_ids).astype(str),
            CATEGORY: categories[item_group],
            "price": np.round(rng.lognormal(3.0, 0.8, n_items), 2),
        }
    )
    return interactions, catalog


def shop_user_ids(ids: pd.Series) -> pd.Series:
    """Integer user ids as shop ids: 42 -> "u0042"."""
    return "u" + ids.astype(str).str.zfill(4)


def shop_item_ids(ids: pd.Series) -> pd.Series:
    """Integer item ids as shop ids (SKUs): 42 -> "SKU-0042"."""
    return "SKU-" + ids.astype(str).str.zfill(4)


def shop_ids(
    interactions: pd.DataFrame, catalog: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames with integer user and item ids replaced by shop ids (text ids stay)."""
    if pd.api.types.is_integer_dtype(interactions[USER]):
        interactions = interactions.assign(**{USER: shop_user_ids(interactions[USER])})
    if pd.api.types.is_integer_dtype(interactions[ITEM]):
        interactions = interactions.assign(**{ITEM: shop_item_ids(interactions[ITEM])})
    if pd.api.types.is_integer_dtype(catalog[ITEM]):
        catalog = catalog.assign(**{ITEM: shop_item_ids(catalog[ITEM])})
    return interactions, catalog


SHOP_USERS = ("007", "7")  # different users: "007" likes the A-suffixed SKUs, "7" the others


def shop_world(
    n_users: int = 200, n_items: int = 80, n_interactions: int = 6000, seed: int = 11
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, catalog) of two strict taste groups with the shop's kind of ids.

    Items of group_0 are "85101A", "85102A", ..., items of group_1 "85101", "85102", ... (so
    "85123A" and "85123" are different items of different groups); user "007" is in group_0,
    user "7" in group_1 (both among the busier users), the others "u<k>". Every interaction of
    a user is in their group.
    """
    interactions, catalog = planted_interactions(
        n_users=n_users, n_items=n_items, n_groups=2, n_interactions=n_interactions,
        taste=1.0, seed=seed,
    )  # fmt: skip
    catalog = catalog.sort_values(ITEM)
    numbers = (85100 + catalog.groupby(CATEGORY).cumcount() + 1).astype(str)
    suffix = np.where(catalog[CATEGORY] == "group_0", "A", "")
    sku = pd.Series((numbers + suffix).to_numpy(), index=catalog[ITEM].to_numpy())
    user_group = interactions.groupby(USER)[CATEGORY].first()
    by_count = interactions[USER].value_counts()
    groups = user_group[by_count.index].to_numpy()
    names = pd.Series("u" + user_group.index.astype(str), index=user_group.index)
    names[by_count.index[groups == "group_0"][5]] = SHOP_USERS[0]
    names[by_count.index[groups == "group_1"][5]] = SHOP_USERS[1]
    interactions = interactions.assign(
        **{USER: interactions[USER].map(names), ITEM: interactions[ITEM].map(sku)}
    )
    return interactions, catalog.assign(**{ITEM: catalog[ITEM].map(sku)})


def write_marts(path: str | Path, interactions: pd.DataFrame, catalog: pd.DataFrame) -> Path:
    """Write marts.interactions and marts.item_features (aggregated in SQL) to a new DuckDB file,
    user_id and item_id as VARCHAR shop ids (integer ids through shop_ids)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    interactions, catalog = shop_ids(interactions, catalog)
    with duckdb.connect(str(path)) as con:
        con.register("interactions_df", interactions)
        con.register("catalog_df", catalog)
        con.execute(f"create schema if not exists {MARTS_SCHEMA}")
        con.execute(
            f"""
            create or replace table {MARTS_SCHEMA}.{INTERACTIONS_MART} as
            select
                interaction_key, user_id::varchar as user_id, item_id::varchar as item_id,
                category, event_type, rating::double as rating, is_rating_imputed,
                null::double as quantity, null::double as value,
                event_at::timestamp as event_at, event_at::date as event_date,
                hour(event_at)::int as event_hour, dayofweek(event_at)::int as event_day_of_week,
                load_id
            from interactions_df
            """
        )
        con.execute(
            f"""
            create or replace table {MARTS_SCHEMA}.{ITEM_FEATURES} as
            with stats as (
                select
                    item_id,
                    count(*) as interaction_count,
                    count(distinct user_id) as user_count,
                    count(*) filter (where not is_rating_imputed) as rating_count,
                    avg(rating) as avg_rating,
                    stddev_samp(rating) as rating_std,
                    max(event_at) as last_interaction_at
                from {MARTS_SCHEMA}.{INTERACTIONS_MART}
                group by item_id
            )
            select
                c.item_id::varchar as item_id, c.title, c.category,
                'code_' || c.category as category_code, c.price,
                (c.price - min(c.price) over ())
                    / nullif(max(c.price) over () - min(c.price) over (), 0) as price_normalised,
                coalesce(s.interaction_count, 0) as interaction_count,
                coalesce(s.user_count, 0) as user_count,
                coalesce(s.rating_count, 0) as rating_count,
                s.avg_rating, s.rating_std,
                coalesce(s.interaction_count, 0)::double as popularity_score,
                s.last_interaction_at,
                (select max(event_at) from {MARTS_SCHEMA}.{INTERACTIONS_MART}) as features_as_of
            from catalog_df as c
            left join stats as s on s.item_id = c.item_id::varchar
            """
        )
        con.unregister("interactions_df")
        con.unregister("catalog_df")
    return path
