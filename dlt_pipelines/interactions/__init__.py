"""dlt source for interaction CSV files: new files only, typed by DuckDB, bad rows quarantined.

Incremental and idempotent on two levels: a file whose content (sha256) was loaded before is
skipped, and a row is inserted only when no row with the same natural key (user_id, item_id,
timestamp, rating, event_type; nulls equal) is in the table yet, so a re-delivered file with
overlapping rows adds only its new rows. Each new file is read once, through a descriptor opened
without leaving the configured folder (entries.py), into a copy of ours: that copy is hashed,
parsed and kept, unchanged, in the landing area, so what is recorded, landed and loaded is the same
bytes even when the file changes meanwhile.

The fast path: DuckDB reads and types whole files and stages the accepted rows as Parquet under
paths.dlt_pipelines/staged/<load id>/; the resources hand dlt SQL models that insert from the
staged files inside the warehouse (models.py). The staged files are deleted once their load
completed.

source_files gets a row per file and attempt. A file that failed (say, it lacks a required column)
is tried again by every load while it is there; a path whose latest attempt failed is settled by a
row of its own once the path is gone, or holds content loaded before (see settings.py), so that
the quality gate's file check (the latest attempt of each path) recovers.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import dlt
import pyarrow as pa

from dlt_pipelines.interactions.ahead import ParseAhead
from dlt_pipelines.interactions.crash import crash_point
from dlt_pipelines.interactions.files import (
    copies_dir,
    failed_paths,
    land,
    new_files,
    settled_paths,
    staged_dir,
)
from dlt_pipelines.interactions.helpers import (
    FILES_SCHEMA,
    CsvFormat,
    ParsedBatch,
    parse_files,
    write_parquet,
)
from dlt_pipelines.interactions.models import (
    FILES_COLUMNS,
    INTERACTIONS_COLUMNS,
    QUARANTINE_COLUMNS,
    SqlModel,
    files_model,
    interactions_model,
    quarantine_model,
)
from dlt_pipelines.interactions.settings import FILES_TABLE, HASHED_KEY, SOURCE_NAME, STATE_KEY
from recomart_core import config
from recomart_core import schema as s


@dlt.source(name=SOURCE_NAME)
def interactions_source(
    files_glob: str,
    cfg: config.Config,
    fmt: CsvFormat,
    since: datetime | None = None,
    audit: list | None = None,
    ahead: ParseAhead | None = None,
) -> list:
    """Resources `interactions`, `interactions_quarantine` and `source_files` for new CSV files.

    The files are chosen and parsed when extraction starts, not when the source is created: only
    then is the state the one dlt will commit (a rerun after a crash may first restore or wipe it).
    The source_files rows (the per-file counts of the parse, then the failed paths settled) are
    appended to `audit` when given. `ahead`, a parse started before the run, is used when it
    parsed the files chosen here.
    """

    @functools.cache
    def parsed() -> tuple[ParsedBatch, Path, list[dict]]:
        state = dlt.current.source_state()
        if ahead is not None:  # its hashes are current for the files it saw
            state.setdefault(HASHED_KEY, {}).update(ahead.hashed)
        listing = new_files(files_glob, cfg.paths.home, state, copies_dir(staged_dir(cfg)), since)
        files = listing.files
        attempted = {f.name for f in files}
        failed = failed_paths(dlt.current.pipeline())
        settled = settled_paths(failed, attempted, listing.seen, state)
        load_id = dlt.current.load_package_state()["load_id"]
        stage = staged_dir(cfg) / load_id
        with ThreadPoolExecutor(1) as background:  # the kernel copies while DuckDB parses
            landing = background.submit(land, files, cfg)
            batch = ahead.take(files, stage) if ahead is not None else None
            if batch is None:
                batch = parse_files(files, fmt, stage)
            landed = landing.result()
        for f in batch.files:
            f["landed_as"] = landed.get(f["sha256"])
        crash_point("parsed")  # a test hook (crash.py)
        if audit is not None:
            audit.extend([*batch.files, *settled])
        # State changes are kept only when made during extraction, as here.
        loaded = state.setdefault(STATE_KEY, {})
        loaded.update({f["sha256"]: f["source_file"] for f in batch.files if f["error"] is None})
        return batch, stage, settled

    @dlt.resource(name=s.RAW_INTERACTIONS_TABLE, columns=INTERACTIONS_COLUMNS)
    def interactions() -> Iterator[SqlModel]:
        batch, _, _ = parsed()
        if batch.accepted is not None:
            yield interactions_model(batch.accepted, [f["source_file"] for f in batch.files])

    @dlt.resource(name=s.RAW_QUARANTINE_TABLE, columns=QUARANTINE_COLUMNS)
    def quarantine() -> Iterator[SqlModel]:
        batch, stage, _ = parsed()
        # yielded even when empty, so the table exists from the first load on (the quality
        # contracts count its rows; dlt creates a table only for data it is given)
        yield quarantine_model(write_parquet(batch.quarantined, stage / "quarantine.parquet"))

    @dlt.resource(name=FILES_TABLE, columns=FILES_COLUMNS)
    def source_files() -> Iterator[SqlModel]:
        batch, stage, settled = parsed()
        if batch.files or settled:
            load_id = stage.name
            rows = [{**f, "_dlt_load_id": load_id} for f in [*batch.files, *settled]]
            schema = FILES_SCHEMA.append(pa.field("_dlt_load_id", pa.string()))
            table = pa.Table.from_pylist(rows, schema=schema)
            yield files_model(write_parquet(table, stage / "files.parquet"))

    return [interactions, quarantine, source_files]
