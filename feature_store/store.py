"""A small feature store over the dbt project: the seed's interface on the marts and their history.

The registry is the dbt manifest plus one metadata table:

- feature sets built by dbt are the models whose YAML declares `config.meta.feature_store`
  (feature_store.manifest); the history of one is the dbt view that declares
  `config.meta.history_of: <set>` (dbt_project/models/history/: valid_from, valid_to), if any;
- feature sets computed outside dbt are registered with `register_feature` and saved with
  `save_feature` as versioned tables in the feature store's own DuckDB file (paths.feature_store,
  default `feature_store.duckdb` beside the warehouse), described by its `registry` table
  (feature_store.registry). The live warehouse is only ever read: a save between
  `recomart transform` and `recomart quality` cannot stop the gate from publishing.

Reads (feature_store.retrieval, .lineage, .training) open the warehouse read-only, attach the
feature store file read-only, and close both before returning. Names are validated (lowercase
identifiers, known to the manifest or the registry) before any SQL is written with them; values
(times, versions) are bound as parameters.

    >>> fs = FeatureStore(config.load())   # at the top: a notebook, a script
    >>> [f.name for f in fs.list_features()]
    ['item_features', 'user_features', 'user_item_features']
    >>> fs.get_feature("user_features", as_of="2026-10-01T00:00:00")   # from its history
    >>> fs.create_feature_view(["user_item_features", "user_features.avg_rating"],
    ...                        join_key=["user_id", "item_id"])
    >>> fs.training_set(as_of="2026-10-01")   # what models_ml trains on
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from feature_store import lineage as _lineage
from feature_store import retrieval, training
from feature_store.errors import FeatureStoreError, check_name, check_version
from feature_store.manifest import DbtManifest
from feature_store.registry import MetadataStore, reading
from feature_store.sets import FeatureSet
from feature_store.training import TrainingSet
from recomart_core import config, engine
from recomart_core.schema import INTERACTIONS_MART, ITEM_FEATURES, MARTS_SCHEMA

MARTS_READ = (INTERACTIONS_MART, ITEM_FEATURES)  # the marts training_set reads


class FeatureStore:
    """The feature store of one RecoMart home: its warehouse (read only), its dbt target folder
    and its feature store file.

    FeatureStore(cfg) uses cfg's paths (the caller read the configuration). Explicit paths
    override them; with `warehouse` alone and no cfg there are no dbt-built sets (no manifest)
    unless dbt_target is given, and the feature store file is the one beside the warehouse.
    Neither cfg nor warehouse: TypeError.

    Engine "spark" (cfg.settings.engine, no explicit warehouse): the marts are the Parquet
    folders dbt built on Spark (recomart_core.engine.spark_table_path); reads see each as a view
    <schema>.<table> of an in-memory DuckDB connection (feature_store.registry.spark_views), so
    the API, the point-in-time rules and the codes are the DuckDB engine's. Only tables have
    folders: a dbt view on Spark (e.g. a history's valid_to view) is not readable this way.
    """

    def __init__(
        self,
        cfg: config.Config | None = None,
        *,
        warehouse: str | Path | None = None,
        dbt_target: str | Path | None = None,
        store_file: str | Path | None = None,
    ) -> None:
        if cfg is None and warehouse is None:
            raise TypeError("FeatureStore needs cfg (a config.Config) or an explicit warehouse")
        self.warehouse = Path(warehouse or cfg.paths.warehouse)
        target = dbt_target or (cfg.paths.dbt_target if cfg else None)
        self.dbt_target = None if target is None else Path(target)
        self.store_file = Path(
            store_file
            or (cfg.paths.feature_store if cfg else None)
            or self.warehouse.parent / config.FEATURE_STORE_FILE
        )
        self.dbt = DbtManifest(self.dbt_target)
        self.metadata = MetadataStore(self.store_file)
        on_spark = cfg is not None and warehouse is None and engine.is_spark(cfg)
        # Spark's warehouse folder, whose tables the reads see as views (engine spark)
        self.spark_tables = engine.spark_warehouse(cfg) if on_spark else None
        self._spark_marts = (
            [engine.spark_table_path(cfg, MARTS_SCHEMA, t) for t in MARTS_READ] if on_spark else []
        )

    @property
    def manifest(self) -> dict:
        return self.dbt.manifest

    def _reading(self):
        return reading(self.warehouse, self.store_file, self.spark_tables)

    def _marts_reading(self):
        """A read connection to the marts only (no feature store file); on Spark,
        FileNotFoundError when the marts' folders are missing."""
        missing = [folder for folder in self._spark_marts if not folder.is_dir()]
        if missing:
            raise FileNotFoundError(
                f"Spark marts not found: {', '.join(map(str, missing))} (run the pipeline's"
                " transform on Spark first)"
            )
        return reading(self.warehouse, None, self.spark_tables)

    # -- metadata -------------------------------------------------------------------------------

    def list_features(self) -> list[FeatureSet]:
        """Every feature set, dbt-built and saved, sorted by name, with its metadata."""
        sets = {**self.dbt.feature_sets(), **self.metadata.feature_sets()}
        return [sets[name] for name in sorted(sets)]

    def describe(self, name: str) -> FeatureSet:
        """The metadata of one feature set; FeatureStoreError if there is none of that name."""
        check_name(name)
        listed = self.list_features()
        for feature_set in listed:
            if feature_set.name == name:
                return feature_set
        known = ", ".join(f.name for f in listed) or "none"
        raise FeatureStoreError(f"unknown feature set {name!r}; known: {known}")

    # -- retrieval ------------------------------------------------------------------------------

    def get_feature(
        self,
        name: str,
        version: str | None = None,
        as_of: datetime | str | None = None,
    ) -> pd.DataFrame:
        """The values of a feature set (`user_features`) or a feature (`user_features.avg_rating`).

        Names are validated and must be known (list_features); anything else is an error.

        Returns one row per entity: its join keys and the features asked for, sorted by the keys.
        - no version, no as_of: the current values (the mart, or the latest saved version);
        - version: that saved version (dbt-built sets have only 'current');
        - as_of (a datetime or ISO string; naive means UTC): the values the store held then: for a
          dbt-built set, the versions of its history valid at that time, `valid_from <= as_of and
          (valid_to is null or as_of < valid_to)` (empty before its first build); for a saved set,
          the latest version saved by then.
        """
        feature_set, columns = retrieval.resolve(name, self.describe)
        with self._reading() as con:
            return retrieval.read_values(con, feature_set, columns, version, as_of)

    def create_feature_view(
        self,
        feature_names: Sequence[str],
        join_key: str | Sequence[str],
        as_of: datetime | str | None = None,
        entity_df: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Feature sets (or single features) joined on `join_key`, for training or inference.

        Each named set must be keyed by a subset of join_key (user_features joins a
        (user_id, item_id) view on user_id). The rows are `entity_df`'s (its join key columns, in
        its order; a left join: an entity without a feature gets nulls), else the keys of the first
        named set keyed by exactly join_key. Ids are text (user_id, item_id are VARCHAR in the
        marts): pass entity values as strings; integers are matched as their decimal text.
        Feature columns are named `<set>__<column>`. With
        as_of, every set is read as of that time (see get_feature), so the view holds only what
        was known then.
        """
        return retrieval.feature_view(
            feature_names,
            join_key,
            lambda name: retrieval.resolve(name, self.describe),
            self.get_feature,
            as_of,
            entity_df,
        )

    def training_set(self, as_of: datetime | str | None = None) -> TrainingSet:
        """What the recommender trains on, point in time: the clean interactions with event_at
        <= as_of (all when None) and the catalog's item attributes, ids as int64 codes with their
        shop ids beside (feature_store.training). Needs no dbt manifest."""
        if self.spark_tables is None and not self.warehouse.is_file():
            raise FileNotFoundError(
                f"warehouse not found: {self.warehouse} (run the pipeline first)"
            )
        with self._marts_reading() as con:  # the marts only
            return training.training_set(con, as_of)

    def item_attributes(self) -> pd.DataFrame:
        """item_id (the shop's id, text), title, category, price of every catalog product."""
        with self._marts_reading() as con:
            return training.item_attributes(con)

    # -- registry and saved features (the feature store file only) -------------------------------

    def _dbt_names(self) -> set[str]:
        """The dbt-built set names, which register and save refuse."""
        return set(self.dbt.feature_nodes())

    def register_feature(
        self,
        name: str,
        description: str,
        join_keys: Sequence[str],
        *,
        entity: str | None = None,
        owner: str | None = None,
        tags: Iterable[str] = (),
        upstream: Iterable[str] = (),
        version: str = "metadata",
    ) -> FeatureSet:
        """Record the metadata of a feature set computed outside dbt (shown by list_features).

        `upstream` names what it is computed from (feature sets or dbt models), for lineage.
        Names of dbt-built sets are refused: their metadata lives in the dbt project's YAML.
        """
        self.metadata.register(
            name, description, join_keys, entity, owner, tags, upstream, version,
            self._dbt_names(),
        )  # fmt: skip
        return self.describe(name)

    def save_feature(
        self,
        df: pd.DataFrame,
        name: str,
        version: str,
        *,
        join_keys: Sequence[str] | None = None,
        description: str | None = None,
        owner: str | None = None,
        tags: Iterable[str] | None = None,
        upstream: Iterable[str] | None = None,
    ) -> FeatureSet:
        """Store `df` as version `version` of the feature set `name` (a table in the feature
        store file, never in the warehouse).

        The join keys (and, when not given, description, owner, tags, upstream) come from the
        set's registered metadata; a new name needs join_keys. The keys must be columns of df,
        without nulls, unique together. Saving an existing version is an error: versions are
        immutable, and case-insensitive (`V1` is `v1`). Returns the set's metadata, which
        list_features now shows.
        """
        check_name(name)
        check_version(version)
        known = self.metadata.feature_sets().get(name)
        if join_keys is None and known is None:
            raise FeatureStoreError(f"{name} is not registered: pass join_keys")
        keys = list(join_keys or known.join_keys)
        for column in df.columns:
            check_name(column, "column name")
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise FeatureStoreError(f"df lacks the join key columns {missing}")
        if df[keys].isna().any().any() or df.duplicated(keys).any():
            raise FeatureStoreError(f"the join keys {keys} must be non-null and unique in df")
        if known is not None and version in known.versions:
            raise FeatureStoreError(f"version {version!r} of {name} exists; versions are immutable")
        same = [v for v in (known.versions if known else ()) if v.lower() == version.lower()]
        if same:
            raise FeatureStoreError(
                f"version {version!r} of {name} exists as {same[0]!r}: versions are"
                " case-insensitive (and immutable): use another version"
            )
        metadata = {
            "description": description
            if description is not None
            else (known.description if known else ""),
            "entity": known.entity if known else None,
            "owner": owner if owner is not None else (known.owner if known else None),
            "tags": tags if tags is not None else (known.tags if known else ()),
            "upstream": upstream if upstream is not None else (known.upstream if known else ()),
        }
        self.metadata.save(df, name, version, keys, metadata, self._dbt_names())
        return self.describe(name)

    # -- lineage --------------------------------------------------------------------------------

    def lineage(self, name: str) -> dict[str, Any]:
        """The upstream chain of a feature set down to the raw sources, and the loads behind them.

        Returns {"name", "source" ("dbt"/"saved"), "nodes": [{"name", "type", "relation"}],
        "edges": [[parent, child], ...], "sources": [...], "loads": {source: [{"load_id",
        "status", "inserted_at"}]}, "exposures": [...], "history": its history view or None}. For a
        saved set, its registered upstream names are followed into the dbt graph.
        """
        feature_set = self.describe(name)
        with self._reading() as con:
            return _lineage.lineage(feature_set, self.dbt, con)
