"""The quality gate on Apache Spark: the relations the contracts read, in this process's session.

dbt-spark keeps its tables in a Hive metastore (embedded Derby) that only dbt's own process may
open, so the gate reads them as what they are, Parquet folders, and registers them in an
in-memory catalog of its own Spark session (recomart_core.engine.spark_session), under the
DuckDB warehouse's names, so the same contracts and SQL run on both engines:

- every table dbt built: <paths.spark>/warehouse/<schema>.db/<table>/ as `<schema>.<table>`
  (marts.interactions, ...);
- every raw table of the lake (dlt_pipelines/lake_pipeline.py): <lake>/<dataset>/<table>/ as
  `<dataset>.<table>` (raw_interactions.interactions, raw_catalog._dlt_loads, ...), the same
  files dbt's build read;
- every view dbt built (staging.stg_catalog__products, ...), created again from the SQL dbt
  compiled for Spark (the `spark` manifest) once the relations it reads are registered.

Each is an external table (or a view): registering reads nothing and writes nothing under dbt's
folders. The contracts are written in the SQL the two engines share, plus SHIMS: the DuckDB
functions Spark lacks, as temporary SQL functions of the same meaning; and double-quoted
identifiers ("timestamp") are identifiers, as in DuckDB (spark.sql.ansi.doubleQuotedIdentifiers,
for the duration of contract_session only, with the other SESSION_CONF).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from dbt_project import build
from dlt_pipelines.lake_pipeline import lake_tables
from recomart_core import config, engine
from recomart_core.schema import MARTS_SCHEMA

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# DuckDB functions the contracts use that Spark does not have, as Spark SQL functions that
# give the same values: {name: definition}.
SHIMS = {
    # DuckDB isinf: true for +-infinity, false for a finite number or NaN, null for null
    "isinf": "(x double) returns boolean return abs(x) = double('Infinity')",
    # DuckDB epoch: the seconds since 1970-01-01 UTC of a timestamp, with its microseconds
    "epoch": "(ts timestamp) returns double return unix_micros(ts) / 1e6",
}
SESSION_CONF = {
    # "name" is a name, as in DuckDB (Spark's default: a string)
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    # a Parquet timestamp without time zone (the lake's raw event time: DuckDB's TIMESTAMP) is
    # read as Spark's TIMESTAMP, the same instant in the session's zone (UTC), not as
    # TIMESTAMP_NTZ, which Soda does not take for the contracts' `timestamp`
    "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
}
CATALOG_FOLDER = "gate_catalog"  # <paths.spark>/gate_catalog: the gate's databases (empty)


@contextmanager
def contract_session(cfg: config.Config) -> Iterator[SparkSession]:
    """This process's Spark session (stopped after) with every relation of the module docstring
    registered, SHIMS defined and SESSION_CONF set: the active session that
    datasource_spark.yml's `use_active_session` hands to Soda."""
    with engine.spark_session(cfg, app="recomart-quality-gate") as session:
        session.sparkContext.setLogLevel("ERROR")
        saved = {key: session.conf.get(key, None) for key in SESSION_CONF}
        for key, value in SESSION_CONF.items():
            session.conf.set(key, value)
        try:
            register(session, cfg)
            yield session
        finally:
            for key, value in saved.items():
                if value is None:
                    session.conf.unset(key)
                else:
                    session.conf.set(key, value)


def register(session: SparkSession, cfg: config.Config) -> list[str]:
    """Register in `session` (in-memory catalog) every table dbt built on Spark, every lake
    table, every view dbt built whose inputs are registered, and SHIMS. Returns the registered
    relations, "<schema>.<name>", in order. Raises FileNotFoundError without a Spark marts
    folder (dbt has not built on Spark)."""
    warehouse = engine.spark_warehouse(cfg)
    tables = engine.spark_tables(warehouse)
    if not any(name.startswith(f"{MARTS_SCHEMA}.") for name in tables):
        raise FileNotFoundError(
            f"No Spark marts in {warehouse}: load, export the lake and build on Spark first"
        )
    for name, folder in lake_tables(cfg.paths.lake).items():  # the warehouse's names
        tables.setdefault(name, cfg.paths.lake / folder)
    views = _dbt_views(cfg, set(tables))
    for name, definition in SHIMS.items():
        session.sql(f"create or replace temporary function {name}{definition}")
    catalog = cfg.paths.spark / CATALOG_FOLDER
    for schema in sorted({name.split(".")[0] for name in [*tables, *(v for v, _ in views)]}):
        location = _literal(str(catalog / f"{schema}.db"))
        session.sql(f"create database if not exists `{schema}` location {location}")
    for name, folder in tables.items():
        session.sql(f"drop table if exists {_quoted(name)}")  # external: its files stay
        session.sql(f"create table {_quoted(name)} using parquet location {_literal(str(folder))}")
    for name, sql in views:
        session.sql(f"create or replace view {_quoted(name)} as {sql}")
    registered = [*tables, *(name for name, _ in views)]
    return registered


def _dbt_views(cfg: config.Config, available: set[str]) -> list[tuple[str, str]]:
    """("<schema>.<name>", compiled select) of each view model in dbt's Spark manifest whose
    inputs (models and sources) are in `available` or an earlier view, dependencies first."""
    # build.dbt_args: the Spark run's dbt output is in a `spark` subfolder of the target path
    manifest_path = cfg.paths.dbt_target / build.SPARK / "manifest.json"
    if not manifest_path.exists():
        return []
    manifest = json.loads(manifest_path.read_text())
    relation = {
        key: f"{node['schema']}.{node.get('alias') or node.get('identifier') or node['name']}"
        for key, node in {**manifest["nodes"], **manifest["sources"]}.items()
        if node.get("resource_type") in ("model", "source")
    }
    views = {
        key: node
        for key, node in manifest["nodes"].items()
        if node.get("resource_type") == "model"
        and node["config"].get("materialized") == "view"
        and node.get("compiled_code")
    }
    found: list[tuple[str, str]] = []
    known = set(available)
    pending = dict(views)
    while pending:
        ready = [
            key
            for key, node in pending.items()
            if all(relation.get(dep) in known for dep in node["depends_on"]["nodes"])
        ]
        if not ready:
            break  # the rest read a relation Spark's build did not write
        for key in sorted(ready):
            found.append((relation[key], pending.pop(key)["compiled_code"]))
            known.add(relation[key])
    return found


def load_ids(session: SparkSession, datasets: tuple[str, ...], latest: int) -> dict[str, dict]:
    """Per raw dlt dataset registered in `session`: the number of completed loads and the latest
    `latest` ids (read from the lake's copy of its _dlt_loads table)."""
    found = {}
    names = {row.namespace for row in session.sql("show databases").collect()}
    for dataset in datasets:
        if dataset not in names or not session.catalog.tableExists(f"{dataset}._dlt_loads"):
            continue  # not loaded yet
        rows = session.sql(
            f"select load_id from `{dataset}`.`_dlt_loads` where status = 0 order by load_id"
        ).collect()
        ids = [row.load_id for row in rows]
        found[dataset] = {"loads": len(ids), "latest": ids[-latest:]}
    return found


def _quoted(name: str) -> str:
    return ".".join(f"`{part.replace('`', '``')}`" for part in name.split("."))


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
