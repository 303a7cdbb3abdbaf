"""dlt source for interaction CSV files: new files only, typed by DuckDB, bad rows quarantined.

Incremental and idempotent on two levels: a file whose content (sha256) was loaded before is
skipped, and rows are inserted only when their interaction_key (md5 of user, item, timestamp,
rating, event type) is not in the table yet, so a re-delivered file with overlapping rows adds
only its new rows. Each new file is first copied, unchanged, to the landing area.
"""

from __future__ import annotations

import functools
import glob
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dlt
import pyarrow as pa

from dlt_pipelines.common import landing_path
from dlt_pipelines.interactions.helpers import (
    CsvFormat,
    ParsedBatch,
    SourceFile,
    file_sha256,
    parse_files,
)
from dlt_pipelines.interactions.settings import FILES_TABLE, HASHED_KEY, SOURCE_NAME, STATE_KEY
from recomart import config
from recomart import schema as s


def _display_name(path: Path, home: Path) -> str:
    """The file's path relative to the project home when inside it, else absolute."""
    return str(path.relative_to(home)) if path.is_relative_to(home) else str(path)


def new_files(
    files_glob: str, home: Path, state: dict, since: datetime | None = None
) -> list[SourceFile]:
    """Files matching the glob (sorted by name; modified at or after `since` when given) whose
    content was not loaded before. A file unchanged since it was last hashed (same path, size
    and mtime, remembered in the state) is not read again."""
    loaded, hashed = state.get(STATE_KEY, {}), state.setdefault(HASHED_KEY, {})
    found = []
    for p in sorted(Path(p).resolve() for p in glob.glob(files_glob, recursive=True)):
        if not p.is_file():
            continue
        stat = p.stat()
        if since and datetime.fromtimestamp(stat.st_mtime, UTC) < since:
            continue
        fingerprint = [stat.st_size, stat.st_mtime_ns]
        known = hashed.get(str(p))
        sha = known[2] if known and known[:2] == fingerprint else file_sha256(p)
        hashed[str(p)] = [*fingerprint, sha]
        if sha not in loaded:
            found.append(SourceFile(p, _display_name(p, home), sha))
    return found


def land(files: list[SourceFile], cfg: config.Config) -> dict[str, str]:
    """Copy each file, as it arrived, to the landing area; return sha256 -> landed path."""
    landed = {}
    for f in files:
        target = landing_path(cfg, SOURCE_NAME, "csv", f"{f.sha256[:12]}_{f.path.name}")
        if not target.exists():
            shutil.copy2(f.path, target)
        landed[f.sha256] = _display_name(target, cfg.paths.home)
    return landed


def _file_counts(batch: ParsedBatch, landed: dict[str, str]) -> list[dict]:
    """Per-file rows accepted and quarantined, beside each file's size, landing copy and error."""

    def counts(table: pa.Table | None) -> dict[str, int]:
        if table is None:
            return {}
        names = table.column(s.SOURCE_FILE).value_counts()
        return {v["values"].as_py(): v["counts"].as_py() for v in names}

    accepted, quarantined = counts(batch.accepted), counts(batch.quarantined)
    return [
        {
            **f,
            "landed_as": landed.get(f["sha256"]),
            "accepted": accepted.get(f["source_file"], 0),
            "quarantined": quarantined.get(f["source_file"], 0),
        }
        for f in batch.files
    ]


@dlt.source(name=SOURCE_NAME)
def interactions_source(
    files_glob: str, cfg: config.Config, fmt: CsvFormat, since: datetime | None = None
) -> list:
    """Resources `interactions`, `interactions_quarantine` and `source_files` for new CSV files.

    The files are chosen and parsed when extraction starts, not when the source is created: only
    then is the state the one dlt will commit (a rerun after a crash may first restore or wipe it).
    """

    @functools.cache
    def parsed() -> tuple[ParsedBatch, list[dict]]:
        state = dlt.current.source_state()
        files = new_files(files_glob, cfg.paths.home, state, since)
        batch = parse_files(files, fmt)
        audit = _file_counts(batch, land(files, cfg))
        # State changes are kept only when made during extraction, as here.
        loaded = state.setdefault(STATE_KEY, {})
        loaded.update({f["sha256"]: f["source_file"] for f in audit if f["error"] is None})
        return batch, audit

    @dlt.resource(
        name=s.RAW_INTERACTIONS_TABLE,
        primary_key=s.INTERACTION_KEY,
        write_disposition={"disposition": "merge", "strategy": "insert-only"},
    )
    def interactions() -> Iterator[pa.Table]:
        batch = parsed()[0]
        if batch.accepted is not None and batch.accepted.num_rows:
            yield batch.accepted

    @dlt.resource(
        name=s.RAW_QUARANTINE_TABLE,
        primary_key=("file_sha256", s.SOURCE_LINE),
        write_disposition={"disposition": "merge", "strategy": "insert-only"},
    )
    def quarantine() -> Iterator[pa.Table]:
        batch = parsed()[0]
        # yielded even when empty, so the table exists from the first load on (the quality
        # contracts count its rows; dlt creates a table only for data it is given)
        if batch.quarantined is not None:
            yield batch.quarantined

    @dlt.resource(
        name=FILES_TABLE,
        primary_key="sha256",
        write_disposition="merge",
        columns={"error": {"data_type": "text", "nullable": True}},
    )
    def source_files() -> Iterator[list[dict]]:
        audit = parsed()[1]
        if audit:
            yield audit

    return [interactions, quarantine, source_files]
