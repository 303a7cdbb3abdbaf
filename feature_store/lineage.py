"""Lineage of a feature set: its upstream chain in the dbt graph down to the raw sources, and the
dlt loads present in those sources."""

from __future__ import annotations

from typing import Any

import duckdb

from feature_store.errors import quote
from feature_store.manifest import DbtManifest, short
from feature_store.sets import DBT, FeatureSet


def lineage(
    feature_set: FeatureSet, dbt: DbtManifest, con: duckdb.DuckDBPyConnection
) -> dict[str, Any]:
    """{"name", "source", "nodes": [{"name", "type", "relation"}], "edges": [[parent, child]],
    "sources", "loads": {source: [{"load_id", "status", "inserted_at"}]}, "exposures",
    "history": the schema.view of its history (dbt_project/models/history/), or None}.

    A saved set's registered upstream names are followed into the dbt graph. con reads the
    warehouse (the dlt load tables).
    """
    manifest = dbt.manifest
    name = feature_set.name
    roots: list[str] = []
    edges: list[list[str]] = []
    dbt_nodes = {**manifest["nodes"], **manifest["sources"]}
    by_name = {
        n["name"]: uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"
    }
    if feature_set.source == DBT:
        roots = [feature_set.extra["dbt_unique_id"]]
    else:
        for parent in feature_set.upstream:
            if parent in by_name:
                roots.append(by_name[parent])
            edges.append([parent, name])
    chain = [*roots, *(n for r in roots for n in dbt.upstream_chain(r))]
    chain = list(dict.fromkeys(chain))
    for node in chain:
        for parent in manifest["parent_map"].get(node, []):
            if not parent.startswith("test."):
                edges.append([short(parent), short(node)])
    nodes = [
        {
            "name": short(uid),
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
        "sources": [short(s) for s in sources],
        "loads": loads(manifest, sources, con),
        "exposures": list(feature_set.exposures),
        "history": feature_set.history,
    }


def loads(
    manifest: dict, source_ids: list[str], con: duckdb.DuckDBPyConnection
) -> dict[str, list[dict]]:
    """For each raw source table with dlt's _dlt_load_id: the dlt loads present in it."""
    found: dict[str, list[dict]] = {}
    for uid in source_ids:
        source = manifest["sources"][uid]
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
            f" from {quote(schema, '_dlt_loads')} as l"
            " where l.load_id in"
            f" (select distinct _dlt_load_id from {quote(schema, table)})"
            f" order by l.load_id"
        ).fetchall()
        found[short(uid)] = [
            {"load_id": load_id, "status": status, "inserted_at": inserted_at.isoformat()}
            for load_id, status, inserted_at in rows
        ]
    return found
