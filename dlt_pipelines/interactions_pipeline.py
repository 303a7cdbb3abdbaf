"""Load interaction CSV files into raw_interactions.

Run alone: `python -m dlt_pipelines.interactions_pipeline`.
"""

from __future__ import annotations

from dlt_pipelines.common import make_pipeline
from dlt_pipelines.interactions import interactions_source
from dlt_pipelines.interactions.settings import DATASET, FILES_TABLE, PIPELINE_NAME
from recomart import config


def load_interactions(cfg: config.Config | None = None, files_glob: str | None = None) -> dict:
    """Load new files matching the glob (default: paths.interactions_glob).

    Returns {"load_id", "files": [per-file counts and errors]}; files loaded before are skipped
    and not listed. A file with an error (say, a missing column) is listed with its error, loads
    nothing, and is tried again on the next run.
    """
    cfg = cfg or config.load()
    pipeline = make_pipeline(PIPELINE_NAME, DATASET, cfg)
    source = interactions_source(files_glob or cfg.paths.interactions_glob, cfg.paths.home)
    info = pipeline.run(source)
    if not info.loads_ids:
        return {"load_id": None, "files": []}
    load_id = info.loads_ids[-1]
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            f"select source_file, rows, accepted, quarantined, error from {FILES_TABLE}"
            " where _dlt_load_id = %s order by source_file",
            load_id,
        )
    columns = ("source_file", "rows", "accepted", "quarantined", "error")
    return {"load_id": load_id, "files": [dict(zip(columns, row, strict=True)) for row in rows]}


if __name__ == "__main__":
    print(load_interactions())
