"""The dbt half of the registry: feature sets are the dbt models whose YAML declares
`config.meta.feature_store` (entity, join keys, owner).

Their descriptions, columns, types, tags, history, exposures and lineage come from dbt's
`manifest.json` (and `catalog.json`, for column types, when `dbt docs generate` wrote one) in the
dbt target folder. Nothing here opens a database.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from feature_store.errors import FeatureStoreError
from feature_store.sets import CURRENT, DBT, Column, FeatureSet

META_KEY = "feature_store"  # config.meta key that marks a dbt model as a feature set
HISTORY_OF = "history_of"  # config.meta key of a history view: the name of the set it records


class DbtManifest:
    """The feature sets of one dbt target folder (None: no dbt project built, no dbt sets)."""

    def __init__(self, dbt_target: str | Path | None) -> None:
        self.dbt_target = None if dbt_target is None else Path(dbt_target)

    @cached_property
    def manifest(self) -> dict:
        path = None if self.dbt_target is None else self.dbt_target / "manifest.json"
        if path is None or not path.exists():
            raise FileNotFoundError(
                f"no dbt manifest at {path or 'an unknown dbt target'}: run `recomart transform`"
                " first"
            )
        return json.loads(path.read_text())

    def catalog_types(self) -> dict[str, dict[str, str]]:
        """{node id: {column: type}} from catalog.json, when `dbt docs generate` wrote one."""
        path = None if self.dbt_target is None else self.dbt_target / "catalog.json"
        if path is None or not path.exists():
            return {}
        catalog = json.loads(path.read_text())
        return {
            node_id: {name.lower(): col["type"] for name, col in node["columns"].items()}
            for node_id, node in catalog.get("nodes", {}).items()
        }

    def feature_nodes(self) -> dict[str, dict]:
        """{name: manifest node} of the models declared as feature sets (none without a dbt
        target; FileNotFoundError when the target has no manifest yet)."""
        if self.dbt_target is None:
            return {}
        return {
            node["name"]: node
            for node in self.manifest["nodes"].values()
            if node["resource_type"] == "model" and META_KEY in node["config"].get("meta", {})
        }

    def feature_sets(self) -> dict[str, FeatureSet]:
        nodes = self.feature_nodes()
        types = self.catalog_types()
        histories = self.history_nodes() if nodes else {}
        return {
            name: self._feature_set(node, types, histories.get(name))
            for name, node in nodes.items()
        }

    def history_nodes(self) -> dict[str, dict]:
        """{feature set name: manifest node} of the history views, the models whose YAML declares
        `config.meta.history_of: <set>` (dbt_project/models/history/); two for one set is a
        FeatureStoreError."""
        found: dict[str, dict] = {}
        for node in self.manifest["nodes"].values():
            of = node["config"].get("meta", {}).get(HISTORY_OF)
            if node["resource_type"] != "model" or of is None:
                continue
            if of in found:
                raise FeatureStoreError(
                    f"two dbt models declare {HISTORY_OF}: {of}: {found[of]['name']} and"
                    f" {node['name']}; keep one"
                )
            found[of] = node
        return found

    def _feature_set(
        self, node: dict, types: dict[str, dict[str, str]], history: dict | None
    ) -> FeatureSet:
        meta = node["config"]["meta"][META_KEY]
        catalog_types = types.get(node["unique_id"], {})
        columns = tuple(
            Column(name, catalog_types.get(name.lower(), col.get("data_type")), col["description"])
            for name, col in node["columns"].items()
        )
        parents = self.manifest["parent_map"].get(node["unique_id"], [])
        chain = self.upstream_chain(node["unique_id"])
        return FeatureSet(
            name=node["name"],
            description=node["description"],
            entity=meta.get("entity"),
            join_keys=tuple(meta["join_keys"]),
            columns=columns,
            owner=meta.get("owner"),
            tags=tuple(node["config"].get("tags", [])),
            source=DBT,
            relation=f"{node['schema']}.{node['alias']}",
            versions=(CURRENT,),
            history=f"{history['schema']}.{history['alias']}" if history else None,
            upstream=tuple(short(p) for p in parents),
            sources=tuple(short(n) for n in chain if n.startswith("source.")),
            exposures=tuple(
                short(c)
                for c in self.manifest["child_map"].get(node["unique_id"], [])
                if c.startswith("exposure.")
            ),
            extra={"dbt_unique_id": node["unique_id"], "path": node["original_file_path"]},
        )

    def upstream_chain(self, unique_id: str) -> list[str]:
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


def short(unique_id: str) -> str:
    """'model.recomart.user_features' -> 'user_features'; sources keep 'source.table'."""
    kind, _, rest = unique_id.partition(".")
    parts = rest.split(".")
    return ".".join(parts[1:]) if kind == "source" else parts[-1]
