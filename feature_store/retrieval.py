"""Reading feature values: current, by version, or as of a point in time, and joined into views.

- a dbt-built set: its mart now, or as of a time the versions of its history view valid then;
- a saved set: its latest version, a named version, or the latest version saved by a time.
Every read runs in one `registry.reading` connection (the warehouse read-only, the feature store
file attached read-only) and closes it before returning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from feature_store.errors import FeatureStoreError, check_name, check_version, quote, utc_naive
from feature_store.registry import saved_relation, table_name
from feature_store.sets import CURRENT, DBT, FeatureSet

# the versions of a history view (dbt_project/models/history/) valid at one time, bound twice
HISTORY_VALID = "valid_from <= ? and (valid_to is null or ? < valid_to)"


def resolve(name: Any, describe: Callable[[str], FeatureSet]) -> tuple[FeatureSet, list[str]]:
    """'set' or 'set.column' -> (the set, the columns asked for: all but its keys when none)."""
    if not isinstance(name, str):
        raise FeatureStoreError(f"invalid feature name {name!r}")
    set_name, _, column = name.partition(".")
    feature_set = describe(set_name)
    all_columns = [c.name for c in feature_set.columns]
    if column:
        check_name(column, "column name")
        if column not in all_columns:
            raise FeatureStoreError(
                f"{set_name} has no column {column!r}; columns: {', '.join(all_columns)}"
            )
        return feature_set, [column]
    return feature_set, [c for c in all_columns if c not in feature_set.join_keys]


def relation_for(
    feature_set: FeatureSet, version: str | None, as_of: datetime | None
) -> tuple[str, str, list[Any]]:
    """(relation, where clause, parameters) that give the set's rows for version / as_of."""
    if feature_set.source == DBT:
        if version not in (None, CURRENT):
            raise FeatureStoreError(
                f"{feature_set.name} is built by dbt and has one version, {CURRENT!r}; "
                "read its past values with as_of="
            )
        if as_of is None:
            return quote(*feature_set.relation.split(".")), "true", []
        if feature_set.history is None:
            raise FeatureStoreError(
                f"{feature_set.name} has no history (no dbt model declares history_of:"
                f" {feature_set.name}), so nothing to read as of a time; build the marts with"
                " --vars as_of for a point-in-time copy"
            )
        return quote(*feature_set.history.split(".")), HISTORY_VALID, [as_of, as_of]
    created = feature_set.extra["created_at"]
    if version is None and as_of is None:
        version = feature_set.versions[-1] if feature_set.versions else None
    elif version is None:  # the latest version saved at or before as_of
        earlier = [v for v in feature_set.versions if utc_naive(created[v]) <= as_of]
        if not earlier:
            raise FeatureStoreError(f"no version of {feature_set.name} was saved by {as_of}")
        version = earlier[-1]
    else:
        check_version(version)
    if version not in feature_set.versions:
        raise FeatureStoreError(
            f"unknown version {version!r} of {feature_set.name}; "
            f"versions: {', '.join(feature_set.versions) or 'none saved'}"
        )
    return saved_relation(table_name(feature_set.name, version)), "true", []


def read_values(
    con: duckdb.DuckDBPyConnection,
    feature_set: FeatureSet,
    columns: list[str],
    version: str | None = None,
    as_of: datetime | str | None = None,
) -> pd.DataFrame:
    """One row per entity: the set's join keys and `columns`, sorted by the keys."""
    as_of_ts = None if as_of is None else utc_naive(as_of)
    relation, where, params = relation_for(feature_set, version, as_of_ts)
    keys = list(feature_set.join_keys)
    columns = [c for c in columns if c not in keys]
    selected = ", ".join(quote(c) for c in [*keys, *columns])
    order = ", ".join(quote(k) for k in keys)
    return con.execute(
        f"select {selected} from {relation} where {where} order by {order}", params
    ).df()


def feature_view(
    feature_names: Sequence[str],
    join_key: str | Sequence[str],
    resolve_name: Callable[[str], tuple[FeatureSet, list[str]]],
    get_feature: Callable[..., pd.DataFrame],
    as_of: datetime | str | None = None,
    entity_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Feature sets (or single features) joined on join_key: FeatureStore.create_feature_view."""
    keys = [join_key] if isinstance(join_key, str) else list(join_key)
    if not keys:
        raise FeatureStoreError("join_key is empty")
    for key in keys:
        check_name(key, "join key")
    if isinstance(feature_names, str) or not feature_names:
        raise FeatureStoreError("feature_names must be a non-empty list of names")
    wanted: dict[str, list[str]] = {}
    sets: dict[str, FeatureSet] = {}
    for name in feature_names:
        feature_set, columns = resolve_name(name)
        if not set(feature_set.join_keys) <= set(keys):
            raise FeatureStoreError(
                f"{feature_set.name} is keyed by {list(feature_set.join_keys)}, "
                f"not a subset of the join key {keys}"
            )
        sets[feature_set.name] = feature_set
        wanted.setdefault(feature_set.name, [])
        wanted[feature_set.name] += [c for c in columns if c not in wanted[feature_set.name]]

    if entity_df is not None:
        missing = [k for k in keys if k not in entity_df.columns]
        if missing:
            raise FeatureStoreError(f"entity_df lacks the join key columns {missing}")
        view = entity_df[keys].reset_index(drop=True)
    else:
        spine = next((n for n in wanted if set(sets[n].join_keys) == set(keys)), None)
        if spine is None:
            raise FeatureStoreError(
                f"none of {list(wanted)} is keyed by exactly {keys}: pass entity_df"
            )
        view = get_feature(spine, as_of=as_of)[keys]
    for set_name, columns in wanted.items():
        values = get_feature(set_name, as_of=as_of)
        set_keys = list(sets[set_name].join_keys)
        values = values[[*set_keys, *columns]].rename(
            columns={c: f"{set_name}__{c}" for c in columns}
        )
        view, values = comparable_keys(view, values, set_keys)
        view = view.merge(values, on=set_keys, how="left", validate="many_to_one")
    return view


def comparable_keys(
    left: pd.DataFrame, right: pd.DataFrame, keys: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """left and right with each key column that is text on one side and not on the other cast
    to text on both (ids are strings; an integer id is its decimal text)."""
    for key in keys:
        text = pd.api.types.is_string_dtype
        if text(left[key]) != text(right[key]):
            left = left.assign(**{key: left[key].astype(str)})
            right = right.assign(**{key: right[key].astype(str)})
    return left, right
