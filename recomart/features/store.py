"""A small feature store over the dbt project: the seed's interface on the marts and snapshots.

What it reads and writes:

- Feature sets built by dbt are the models whose YAML declares `config.meta.feature_store` (entity,
  join keys, owner): `user_features`, `item_features`, `user_item_features`. Their descriptions,
  columns, types, tags and lineage come from dbt's `manifest.json` (and `catalog.json` when
  `dbt docs generate` wrote one) in the dbt target folder; their history comes from the dbt
  snapshot built on each of them, if any.
- Feature sets computed outside dbt are saved with `save_feature` as versioned tables
  `feature_store."<name>__<version>"` in the warehouse, and described in the metadata registry
  `feature_store.registry` (one row per name and version), which `register_feature` also writes.

Reads open the DuckDB warehouse read-only and close it before returning; only `register_feature`
and `save_feature` open it read-write (so never while dbt or another writer holds it).
Names are validated (lowercase identifiers, known to the manifest or the registry) before any SQL
is written with them; values (times, versions) are bound as parameters.

    >>> fs = FeatureStore()
    >>> [f.name for f in fs.list_features()]
    ['item_features', 'user_features', 'user_item_features']
    >>> fs.get_feature("user_features", as_of="2026-10-01T00:00:00")   # from the snapshot
    >>> fs.create_feature_view(["user_item_features", "user_features.avg_rating"],
    ...                        join_key=["user_id", "item_id"])
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from recomart.core import config

STORE_SCHEMA = "feature_store"  # saved feature tables and the registry, in the warehouse
REGISTRY_TABLE = "registry"
CURRENT = "current"  # the version name of a dbt-built feature set (its history is by time)
META_KEY = "feature_store"  # config.meta key that marks a dbt model as a feature set
SNAPSHOT_COLUMNS = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

REGISTRY_DDL = f"""
create table if not exists {STORE_SCHEMA}.{REGISTRY_TABLE} (
    name varchar not null,
    version varchar not null,
    description varchar,
    entity varchar,
    join_keys varchar not null,      -- JSON list
    owner varchar,
    tags varchar not null,           -- JSON list
    upstream varchar not null,       -- JSON list of feature set or dbt node names
    table_name varchar,              -- the saved table; null for metadata only
    columns varchar,                 -- JSON list of {{"name", "data_type"}}
    created_at timestamp not null,
    primary key (name, version)
)
"""


class FeatureStoreError(ValueError):
    """A name, version or argument the store cannot serve; the message says what exists."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str | None
    description: str = ""


@dataclass(frozen=True)
class FeatureSet:
    """One feature set: its metadata, where it lives and where it comes from."""

    name: str
    description: str
    entity: str | None
    join_keys: tuple[str, ...]
    columns: tuple[Column, ...]
    owner: str | None
    tags: tuple[str, ...]
    source: str  # "dbt" (a mart) or "saved" (save_feature / register_feature)
    relation: str | None  # schema.table of the current data; None for metadata only
    versions: tuple[str, ...]
    snapshot: str | None = None  # schema.table of the dbt snapshot (history), if any
    upstream: tuple[str, ...] = ()  # direct parents (dbt nodes or registered names)
    sources: tuple[str, ...] = ()  # the raw sources at the root of the lineage
    exposures: tuple[str, ...] = ()  # what consumes it (dbt exposures)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_name(name: Any, what: str = "feature name") -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise FeatureStoreError(
            f"invalid {what} {name!r}: use a lowercase identifier (letters, digits, underscores)"
        )
    return name


def _check_version(version: Any) -> str:
    if not isinstance(version, str) or not VERSION.match(version):
        raise FeatureStoreError(
            f"invalid version {version!r}: letters, digits, '_', '.', '-', at most 63 characters"
        )
    return version


def _quote(*parts: str) -> str:
    """A qualified identifier, each part validated then double-quoted."""
    for part in parts:
        if not re.match(r"^[A-Za-z0-9_.\-]+$", part):
            raise FeatureStoreError(f"invalid identifier {part!r}")
    return ".".join(f'"{part}"' for part in parts)


def _utc_naive(value: datetime | str | pd.Timestamp) -> datetime:
    """A point in time as a naive UTC datetime (the warehouse's timestamps are UTC, no zone)."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


class FeatureStore:
    """The feature store of one RecoMart home (its warehouse and dbt target folder)."""

    def __init__(
        self,
        cfg: config.Config | None = None,
        *,
        warehouse: str | Path | None = None,
        dbt_target: str | Path | None = None,
    ) -> None:
        cfg = cfg or (None if warehouse and dbt_target else config.load())
        self.warehouse = Path(warehouse or cfg.paths.warehouse)
        self.dbt_target = Path(dbt_target or cfg.paths.dbt_target)
        self._manifest: dict | None = None

    # -- metadata -------------------------------------------------------------------------------

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            path = self.dbt_target / "manifest.json"
            if not path.exists():
                raise FileNotFoundError(
                    f"no dbt manifest at {path}: run `recomart transform` first"
                )
            self._manifest = json.loads(path.read_text())
        return self._manifest

    def _catalog_types(self) -> dict[str, dict[str, str]]:
        """{node id: {column: type}} from catalog.json, when `dbt docs generate` wrote one."""
        path = self.dbt_target / "catalog.json"
        if not path.exists():
            return {}
        catalog = json.loads(path.read_text())
        return {
            node_id: {name.lower(): col["type"] for name, col in node["columns"].items()}
            for node_id, node in catalog.get("nodes", {}).items()
        }

    def _dbt_feature_nodes(self) -> dict[str, dict]:
        return {
            node["name"]: node
            for node in self.manifest["nodes"].values()
            if node["resource_type"] == "model" and META_KEY in node["config"].get("meta", {})
        }

    def _snapshot_of(self, node_id: str) -> dict | None:
        for child in self.manifest["child_map"].get(node_id, []):
            node = self.manifest["nodes"].get(child)
            if node and node["resource_type"] == "snapshot":
                return node
        return None

    def _dbt_feature_set(self, node: dict, types: dict[str, dict[str, str]]) -> FeatureSet:
        meta = node["config"]["meta"][META_KEY]
        catalog_types = types.get(node["unique_id"], {})
        columns = tuple(
            Column(name, catalog_types.get(name.lower(), col.get("data_type")), col["description"])
            for name, col in node["columns"].items()
        )
        snapshot = self._snapshot_of(node["unique_id"])
        parents = self.manifest["parent_map"].get(node["unique_id"], [])
        chain = self._upstream_chain(node["unique_id"])
        return FeatureSet(
            name=node["name"],
            description=node["description"],
            entity=meta.get("entity"),
            join_keys=tuple(meta["join_keys"]),
            columns=columns,
            owner=meta.get("owner"),
            tags=tuple(node["config"].get("tags", [])),
            source="dbt",
            relation=f"{node['schema']}.{node['alias']}",
            versions=(CURRENT,),
            snapshot=f"{snapshot['schema']}.{snapshot['alias']}" if snapshot else None,
            upstream=tuple(self._short(p) for p in parents),
            sources=tuple(self._short(n) for n in chain if n.startswith("source.")),
            exposures=tuple(
                self._short(c)
                for c in self.manifest["child_map"].get(node["unique_id"], [])
                if c.startswith("exposure.")
            ),
            extra={"dbt_unique_id": node["unique_id"], "path": node["original_file_path"]},
        )

    def _registry_rows(self) -> pd.DataFrame:
        if not self.warehouse.exists():
            return pd.DataFrame()
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            exists = con.execute(
                "select count(*) from information_schema.tables"
                " where table_schema = ? and table_name = ?",
                [STORE_SCHEMA, REGISTRY_TABLE],
            ).fetchall()[0][0]
            if not exists:
                return pd.DataFrame()
            return con.sql(
                f"select * from {STORE_SCHEMA}.{REGISTRY_TABLE} order by name, created_at, version"
            ).df()

    def _registered_sets(self) -> dict[str, FeatureSet]:
        rows = self._registry_rows()
        sets: dict[str, FeatureSet] = {}
        for name, versions in rows.groupby("name", sort=True) if len(rows) else []:
            latest = versions.iloc[-1]
            saved = versions[versions["table_name"].notna()]
            columns = json.loads(latest["columns"]) if latest["columns"] else []
            upstream = tuple(json.loads(latest["upstream"]))
            sets[name] = FeatureSet(
                name=name,
                description=latest["description"] or "",
                entity=latest["entity"],
                join_keys=tuple(json.loads(latest["join_keys"])),
                columns=tuple(Column(c["name"], c["data_type"]) for c in columns),
                owner=latest["owner"],
                tags=tuple(json.loads(latest["tags"])),
                source="saved",
                relation=(f"{STORE_SCHEMA}.{saved.iloc[-1]['table_name']}" if len(saved) else None),
                versions=tuple(saved["version"]),
                upstream=upstream,
                extra={
                    "created_at": {
                        v: t.isoformat()
                        for v, t in zip(versions["version"], versions["created_at"], strict=True)
                    }
                },
            )
        return sets

    def list_features(self) -> list[FeatureSet]:
        """Every feature set, dbt-built and saved, sorted by name, with its metadata."""
        types = self._catalog_types()
        sets = {
            name: self._dbt_feature_set(node, types)
            for name, node in self._dbt_feature_nodes().items()
        }
        sets.update(self._registered_sets())
        return [sets[name] for name in sorted(sets)]

    def describe(self, name: str) -> FeatureSet:
        """The metadata of one feature set; FeatureStoreError if there is none of that name."""
        _check_name(name)
        for feature_set in self.list_features():
            if feature_set.name == name:
                return feature_set
        known = ", ".join(f.name for f in self.list_features()) or "none"
        raise FeatureStoreError(f"unknown feature set {name!r}; known: {known}")

    # -- retrieval ------------------------------------------------------------------------------

    def _resolve(self, name: str) -> tuple[FeatureSet, list[str]]:
        """'set' or 'set.column' -> (the set, the columns asked for: all but its keys when none)."""
        if not isinstance(name, str):
            raise FeatureStoreError(f"invalid feature name {name!r}")
        set_name, _, column = name.partition(".")
        feature_set = self.describe(set_name)
        all_columns = [c.name for c in feature_set.columns]
        if column:
            _check_name(column, "column name")
            if column not in all_columns:
                raise FeatureStoreError(
                    f"{set_name} has no column {column!r}; columns: {', '.join(all_columns)}"
                )
            return feature_set, [column]
        return feature_set, [c for c in all_columns if c not in feature_set.join_keys]

    def _relation_for(
        self, feature_set: FeatureSet, version: str | None, as_of: datetime | None
    ) -> tuple[str, str, list[Any]]:
        """(relation, where clause, parameters) that give the set's rows for version/as_of."""
        if feature_set.source == "dbt":
            if version not in (None, CURRENT):
                raise FeatureStoreError(
                    f"{feature_set.name} is built by dbt and has one version, {CURRENT!r}; "
                    "read its past values with as_of="
                )
            if as_of is None:
                return _quote(*feature_set.relation.split(".")), "true", []
            if feature_set.snapshot is None:
                raise FeatureStoreError(
                    f"{feature_set.name} has no dbt snapshot, so no history to read as of a time; "
                    "build the marts with --vars as_of for a point-in-time copy"
                )
            where = "dbt_valid_from <= ? and (dbt_valid_to is null or dbt_valid_to > ?)"
            return _quote(*feature_set.snapshot.split(".")), where, [as_of, as_of]
        created = feature_set.extra["created_at"]
        if version is None and as_of is None:
            version = feature_set.versions[-1] if feature_set.versions else None
        elif version is None:  # the latest version saved at or before as_of
            earlier = [v for v in feature_set.versions if _utc_naive(created[v]) <= as_of]
            if not earlier:
                raise FeatureStoreError(f"no version of {feature_set.name} was saved by {as_of}")
            version = earlier[-1]
        else:
            _check_version(version)
        if version not in feature_set.versions:
            raise FeatureStoreError(
                f"unknown version {version!r} of {feature_set.name}; "
                f"versions: {', '.join(feature_set.versions) or 'none saved'}"
            )
        return _quote(STORE_SCHEMA, _table_name(feature_set.name, version)), "true", []

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
          dbt-built set, the versions of its snapshot valid at that time (empty before the first
          snapshot); for a saved set, the latest version saved by then.
        """
        feature_set, columns = self._resolve(name)
        as_of_ts = None if as_of is None else _utc_naive(as_of)
        relation, where, params = self._relation_for(feature_set, version, as_of_ts)
        keys = list(feature_set.join_keys)
        columns = [c for c in columns if c not in keys]
        selected = ", ".join(_quote(c) for c in [*keys, *columns])
        order = ", ".join(_quote(k) for k in keys)
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(
                f"select {selected} from {relation} where {where} order by {order}", params
            ).df()

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
        keys = [join_key] if isinstance(join_key, str) else list(join_key)
        if not keys:
            raise FeatureStoreError("join_key is empty")
        for key in keys:
            _check_name(key, "join key")
        if isinstance(feature_names, str) or not feature_names:
            raise FeatureStoreError("feature_names must be a non-empty list of names")
        wanted: dict[str, list[str]] = {}
        sets: dict[str, FeatureSet] = {}
        for name in feature_names:
            feature_set, columns = self._resolve(name)
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
            view = self.get_feature(spine, as_of=as_of)[keys]
        for set_name, columns in wanted.items():
            values = self.get_feature(set_name, as_of=as_of)
            set_keys = list(sets[set_name].join_keys)
            values = values[[*set_keys, *columns]].rename(
                columns={c: f"{set_name}__{c}" for c in columns}
            )
            view, values = _comparable_keys(view, values, set_keys)
            view = view.merge(values, on=set_keys, how="left", validate="many_to_one")
        return view

    # -- registry and saved features --------------------------------------------------------

    def _write(self):
        self.warehouse.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.warehouse))
        con.execute(f"create schema if not exists {STORE_SCHEMA}")
        con.execute(REGISTRY_DDL)
        return con

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
        self._register(name, description, join_keys, entity, owner, tags, upstream, version)
        return self.describe(name)

    def _register(
        self,
        name: str,
        description: str,
        join_keys: Sequence[str],
        entity: str | None,
        owner: str | None,
        tags: Iterable[str],
        upstream: Iterable[str],
        version: str,
        table_name: str | None = None,
        columns: list[dict] | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        _check_name(name)
        _check_version(version)
        if name in self._dbt_feature_nodes():
            raise FeatureStoreError(
                f"{name} is built by dbt: describe it in dbt_project/models (its YAML), not here"
            )
        keys = [join_keys] if isinstance(join_keys, str) else list(join_keys)
        if not keys:
            raise FeatureStoreError("a feature set needs at least one join key")
        for key in keys:
            _check_name(key, "join key")
        upstream = list(upstream)
        for parent in upstream:
            _check_name(parent, "upstream name")
        row = [
            name, version, description, entity, json.dumps(keys), owner,
            json.dumps(list(tags)), json.dumps(upstream), table_name,
            json.dumps(columns) if columns is not None else None,
            datetime.now(UTC).replace(tzinfo=None),
        ]  # fmt: skip
        own = con is None
        con = con or self._write()
        try:
            con.execute(
                f"insert or replace into {STORE_SCHEMA}.{REGISTRY_TABLE}"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        finally:
            if own:
                con.close()

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
        """Store `df` as version `version` of the feature set `name` (a table in the warehouse).

        The join keys (and, when not given, description, owner, tags, upstream) come from the
        set's registered metadata; a new name needs join_keys. The keys must be columns of df,
        without nulls, unique together. Saving an existing version is an error: versions are
        immutable. Returns the set's metadata, which list_features now shows.
        """
        _check_name(name)
        _check_version(version)
        known = self._registered_sets().get(name)
        if join_keys is None and known is None:
            raise FeatureStoreError(f"{name} is not registered: pass join_keys")
        keys = list(join_keys or known.join_keys)
        for column in df.columns:
            _check_name(column, "column name")
        missing = [k for k in keys if k not in df.columns]
        if missing:
            raise FeatureStoreError(f"df lacks the join key columns {missing}")
        if df[keys].isna().any().any() or df.duplicated(keys).any():
            raise FeatureStoreError(f"the join keys {keys} must be non-null and unique in df")
        if known is not None and version in known.versions:
            raise FeatureStoreError(f"version {version!r} of {name} exists; versions are immutable")
        table = _table_name(name, version)
        con = self._write()
        try:
            con.execute("begin transaction")
            con.register("incoming_features", df)
            con.execute(
                f"create table {_quote(STORE_SCHEMA, table)} as select * from incoming_features"
            )
            con.unregister("incoming_features")
            columns = [
                {"name": c, "data_type": t}
                for c, t in con.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_schema = ? and table_name = ? order by ordinal_position",
                    [STORE_SCHEMA, table],
                ).fetchall()
            ]
            self._register(
                name,
                description if description is not None else (known.description if known else ""),
                keys,
                known.entity if known else None,
                owner if owner is not None else (known.owner if known else None),
                tags if tags is not None else (known.tags if known else ()),
                upstream if upstream is not None else (known.upstream if known else ()),
                version,
                table_name=table,
                columns=columns,
                con=con,
            )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            con.close()
        return self.describe(name)

    # -- lineage --------------------------------------------------------------------------------

    def _short(self, unique_id: str) -> str:
        """'model.recomart.user_features' -> 'user_features'; sources keep 'source.table'."""
        kind, _, rest = unique_id.partition(".")
        parts = rest.split(".")
        return ".".join(parts[1:]) if kind == "source" else parts[-1]

    def _upstream_chain(self, unique_id: str) -> list[str]:
        """Every node upstream of unique_id, nearest first (breadth-first), without tests."""
        parent_map = self.manifest["parent_map"]
        seen: list[str] = []
        frontier = [unique_id]
        while frontier:
            following = []
            for node in frontier:
                for parent in parent_map.get(node, []):
                    if parent not in seen and not parent.startswith("test."):
                        seen.append(parent)
                        following.append(parent)
            frontier = following
        return seen

    def lineage(self, name: str) -> dict[str, Any]:
        """The upstream chain of a feature set down to the raw sources, and the loads behind them.

        Returns {"name", "source" ("dbt"/"saved"), "nodes": [{"name", "type", "relation"}],
        "edges": [[parent, child], ...], "sources": [...], "loads": {source: [{"load_id",
        "status", "inserted_at"}]}, "exposures": [...]}. For a saved set, its registered upstream
        names are followed into the dbt graph.
        """
        feature_set = self.describe(name)
        roots: list[str] = []
        edges: list[list[str]] = []
        dbt_nodes = {**self.manifest["nodes"], **self.manifest["sources"]}
        by_name = {
            n["name"]: uid
            for uid, n in self.manifest["nodes"].items()
            if n["resource_type"] in ("model", "snapshot")
        }
        if feature_set.source == "dbt":
            roots = [feature_set.extra["dbt_unique_id"]]
        else:
            for parent in feature_set.upstream:
                if parent in by_name:
                    roots.append(by_name[parent])
                edges.append([parent, name])
        chain = [*roots, *(n for r in roots for n in self._upstream_chain(r))]
        chain = list(dict.fromkeys(chain))
        for node in chain:
            for parent in self.manifest["parent_map"].get(node, []):
                if not parent.startswith("test."):
                    edges.append([self._short(parent), self._short(node)])
        nodes = [
            {
                "name": self._short(uid),
                "type": dbt_nodes[uid]["resource_type"],
                "relation": f"{dbt_nodes[uid]['schema']}."
                f"{dbt_nodes[uid].get('alias') or dbt_nodes[uid]['identifier']}",
            }
            for uid in chain
        ]
        sources = [uid for uid in chain if uid.startswith("source.")]
        return {
            "name": name,
            "source": feature_set.source,
            "nodes": nodes,
            "edges": edges,
            "sources": [self._short(s) for s in sources],
            "loads": self._loads(sources),
            "exposures": list(feature_set.exposures),
        }

    def _loads(self, source_ids: list[str]) -> dict[str, list[dict]]:
        """For each raw source table with dlt's _dlt_load_id: the dlt loads present in it."""
        loads: dict[str, list[dict]] = {}
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            for uid in source_ids:
                source = self.manifest["sources"][uid]
                schema, table = source["schema"], source["identifier"]
                has_load_id = con.execute(
                    "select count(*) from information_schema.columns"
                    " where table_schema = ? and table_name = ? and column_name = '_dlt_load_id'",
                    [schema, table],
                ).fetchall()[0][0]
                if not has_load_id:
                    continue
                rows = con.execute(
                    f"select l.load_id, l.status, l.inserted_at"
                    f" from {_quote(schema, '_dlt_loads')} as l"
                    " where l.load_id in"
                    f" (select distinct _dlt_load_id from {_quote(schema, table)})"
                    f" order by l.load_id"
                ).fetchall()
                loads[self._short(uid)] = [
                    {"load_id": load_id, "status": status, "inserted_at": inserted_at.isoformat()}
                    for load_id, status, inserted_at in rows
                ]
        return loads


def _table_name(name: str, version: str) -> str:
    """The warehouse table of a saved version: '<name>__<version>' with '.' and '-' as '_'."""
    return f"{name}__{re.sub(r'[.-]', '_', version)}"


def _comparable_keys(
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
