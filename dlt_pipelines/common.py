"""What both pipelines share: a dlt pipeline writing one raw dataset into the DuckDB warehouse."""

from __future__ import annotations

import dlt

from recomart.config import Config


def make_pipeline(name: str, dataset: str, cfg: Config) -> dlt.Pipeline:
    """A dlt pipeline named `name` loading into schema `dataset` of the warehouse file.

    Its state and load packages stay inside the project (paths.dlt_pipelines), not in ~/.dlt.
    """
    cfg.paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    cfg.paths.dlt_pipelines.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(cfg.paths.warehouse)),
        dataset_name=dataset,
        pipelines_dir=str(cfg.paths.dlt_pipelines),
    )
