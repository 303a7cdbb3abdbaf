"""dlt source for interaction CSV files: new files only, typed by DuckDB, bad rows quarantined.

Incremental and idempotent on two levels: a file whose content (sha256) was loaded before is
skipped, and a row is inserted only when no row with the same natural key (user_id, item_id,
timestamp, rating, event_type; nulls equal) is in the table yet, so a re-delivered file with
overlapping rows adds only its new rows. Each new file is read once, through a descriptor opened
without leaving the configured folder (files.py), into a copy of ours: that copy is hashed,
parsed and kept, unchanged, in the landing area, so what is recorded, landed and loaded is the same
bytes even when the file changes meanwhile.

The fast path: DuckDB reads and types whole files and stages the accepted rows as Parquet under
paths.dlt_pipelines/staged/<load id>/; the resources hand dlt SQL models that insert from the
staged files inside the warehouse (models.py). The staged files are deleted once their load
completed.

Following a file, module by module: the runner (interactions_pipeline.py) starts a parse ahead
(ahead.py) and runs this source; the source lists the drop folder and lands the new files
(files.py), takes the parse (ahead.py: helpers.py, with csv_reader.py and fields.py), and stages
what dlt loads (models.py); then the runner cleans up. `python -m tests.flow ingest` shows it.

source_files gets a row per file and attempt. A file that failed (say, it lacks a required column)
is tried again by every load while it is there; a path whose latest attempt failed is settled by a
row of its own once the path is gone, or holds content loaded before (see settings.py), so that
the quality gate's file check (the latest attempt of each path) recovers.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime

import dlt

from dlt_pipelines.interactions.ahead import ParseAhead, take_or_parse
from dlt_pipelines.interactions.files import (
    copies_dir,
    failed_paths,
    land,
    new_files,
    settled_paths,
)
from dlt_pipelines.interactions.helpers import CsvFormat
from dlt_pipelines.interactions.models import (
    FILES_COLUMNS,
    INTERACTIONS_COLUMNS,
    QUARANTINE_COLUMNS,
    SqlModel,
    staged_models,
)
from dlt_pipelines.interactions.settings import (
    FILES_TABLE,
    HASHED_KEY,
    SOURCE_NAME,
    STATE_KEY,
    staged_dir,
)
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
    def staged() -> tuple[SqlModel | None, SqlModel, SqlModel | None]:
        """The models of the three tables (staged_models), made once."""
        state = dlt.current.source_state()
        if ahead is not None:  # its hashes are current for the files it saw
            state.setdefault(HASHED_KEY, {}).update(ahead.hashed)
        stage_root = ahead.stage_root if ahead is not None else staged_dir(cfg)
        listing = new_files(files_glob, cfg.paths.home, state, copies_dir(stage_root), since)
        settled = settled_paths(failed_paths(dlt.current.pipeline()), listing, state)
        landed = land(listing.files, cfg)
        stage = stage_root / dlt.current.load_package_state()["load_id"]
        batch = take_or_parse(listing.files, fmt, stage, ahead)
        for f in batch.files:
            f["landed_as"] = landed.get(f["sha256"])
        if audit is not None:
            audit.extend([*batch.files, *settled])
        models = staged_models(batch, settled, stage)
        # State changes are kept only when made during extraction, as here.
        loaded = state.setdefault(STATE_KEY, {})
        loaded.update({f["sha256"]: f["source_file"] for f in batch.files if f["error"] is None})
        return models

    @dlt.resource(name=s.RAW_INTERACTIONS_TABLE, columns=INTERACTIONS_COLUMNS)
    def interactions() -> Iterator[SqlModel]:
        model, _, _ = staged()
        if model is not None:
            yield model

    @dlt.resource(name=s.RAW_QUARANTINE_TABLE, columns=QUARANTINE_COLUMNS)
    def quarantine() -> Iterator[SqlModel]:
        _, model, _ = staged()
        yield model  # even when empty (staged_models)

    @dlt.resource(name=FILES_TABLE, columns=FILES_COLUMNS)
    def source_files() -> Iterator[SqlModel]:
        _, _, model = staged()
        if model is not None:
            yield model

    return [interactions, quarantine, source_files]
