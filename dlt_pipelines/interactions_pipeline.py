"""Load interaction CSV files into raw_interactions.

Run alone: `python -m dlt_pipelines.interactions_pipeline`
or `recomart ingest --source interactions`.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime
from pathlib import Path

import dlt

from dlt_pipelines.common import make_pipeline, open_warehouse
from dlt_pipelines.interactions import interactions_source
from dlt_pipelines.interactions.ahead import ParseAhead
from dlt_pipelines.interactions.settings import (
    DATASET,
    FAILED,
    LOADED,
    PIPELINE_NAME,
    staged_dir,
)
from recomart_core import config

log = logging.getLogger("ingestion")
AUDIT_COLUMNS = ("source_file", "rows", "accepted", "quarantined", "error")


def _drop_staged(pipeline: dlt.Pipeline, stage_root: Path) -> None:
    """Delete staged files (under `stage_root`) whose load is done; a pending load still needs
    its files."""
    pending = {*pipeline.list_extracted_load_packages(), *pipeline.list_normalized_load_packages()}
    for folder in stage_root.glob("*"):
        if folder.name not in pending:
            shutil.rmtree(folder, ignore_errors=True)


def load_interactions(
    cfg: config.Config,
    files_glob: str | None = None,
    since: datetime | None = None,
) -> dict:
    """Load new files matching the glob (default: paths.interactions_glob; only files modified at
    or after `since` when given), read as [ingest.interactions] describes.

    Returns {"load_id", "files": [per-file counts and errors], "settled": [failed paths settled],
    "seconds"}; files loaded before are skipped and not listed. A file with an error (say, a missing
    column) is listed with its error, loads nothing, and is tried again on the next run while it is
    there; once its path is gone (or holds content loaded before) it is listed in "settled"
    ({"source_file", "status"}).
    """
    started = time.perf_counter()
    fmt = cfg.settings.ingest.interactions
    audit: list[dict] = []
    glob = files_glob or cfg.paths.interactions_glob
    with open_warehouse(cfg) as warehouse:
        pipeline = make_pipeline(PIPELINE_NAME, DATASET, cfg, warehouse)
        ahead = ParseAhead(pipeline, glob, cfg.paths.home, fmt, staged_dir(cfg), since)
        try:
            info = pipeline.run(interactions_source(glob, cfg, fmt, since, audit, ahead))
        finally:
            if not ahead.taken:  # extraction failed before it took the parse: wait, discard
                ahead.close()
            _drop_staged(pipeline, ahead.stage_root)
        # what this run parsed; pipeline.run raised if its load failed. (A package a killed run
        # left behind is loaded first; its files are in source_files, not here.)
        audit.sort(key=lambda f: f["source_file"])
        files = [{k: f[k] for k in AUDIT_COLUMNS} for f in audit if f["status"] in (LOADED, FAILED)]
        settled = [
            {k: f[k] for k in ("source_file", "status")}
            for f in audit
            if f["status"] not in (LOADED, FAILED)
        ]
    return {
        "load_id": info.loads_ids[-1] if info.loads_ids else None,
        "files": files,
        "settled": settled,
        "seconds": time.perf_counter() - started,
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(load_interactions(config.load()))  # the top of a run: the one place it is read
