"""The raw datasets as Parquet files ("the lake"), for a dbt build on Spark.

dlt loads the raw datasets (raw_interactions, raw_catalog) into the DuckDB warehouse; on engine
spark, the ingest then copies them to the lake with dlt's filesystem destination
(dlt_pipelines/lake_pipeline.py): <lake>/<dataset>/<table>/<load id>.<file id>.parquet. The dbt
project registers each table's folder as a source when it starts (macros/lake.sql, given
lake_var(lake) as its var `lake`).
"""

from __future__ import annotations

from pathlib import Path

from dlt_pipelines.lake_pipeline import lake_tables


def lake_var(lake: Path) -> dict:
    """The dbt var `lake` of the lake folder: {"path": absolute path, "tables": lake_tables, each
    table's folder under the path by its name}."""
    return {"path": str(lake.resolve()), "tables": lake_tables(lake)}
