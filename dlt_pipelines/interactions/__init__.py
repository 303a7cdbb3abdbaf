"""dlt source for interaction CSV files: new files only, typed by DuckDB, bad rows quarantined.

Incremental and idempotent on two levels: a file whose content (sha256) was loaded before is
skipped, and rows are inserted only when their interaction_key (md5 of user, item, timestamp,
rating, event type) is not in the table yet, so a re-delivered file with overlapping rows adds
only its new rows.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

import dlt
import pyarrow as pa

from dlt_pipelines.interactions.helpers import ParsedBatch, parse_files
from dlt_pipelines.interactions.settings import FILES_TABLE, SOURCE_NAME, STATE_KEY
from recomart import schema as s


def _display_name(path: Path, home: Path) -> str:
    """The file's path relative to the project home when inside it, else absolute."""
    return str(path.relative_to(home)) if path.is_relative_to(home) else str(path)


def new_files(files_glob: str, home: Path, loaded: dict) -> list[tuple[Path, str]]:
    """Files matching the glob, sorted by name, whose content was not loaded before."""
    from dlt_pipelines.interactions.helpers import file_sha256

    paths = sorted(Path(p).resolve() for p in glob.glob(files_glob, recursive=True))
    return [(p, _display_name(p, home)) for p in paths if file_sha256(p) not in loaded]


def _file_counts(batch: ParsedBatch) -> list[dict]:
    """Per-file rows accepted and quarantined, beside each file's size and error."""

    def counts(table: pa.Table | None) -> dict[str, int]:
        if table is None:
            return {}
        names = table.column(s.SOURCE_FILE).value_counts()
        return {v["values"].as_py(): v["counts"].as_py() for v in names}

    accepted, quarantined = counts(batch.accepted), counts(batch.quarantined)
    return [
        {
            **f,
            "accepted": accepted.get(f["source_file"], 0),
            "quarantined": quarantined.get(f["source_file"], 0),
        }
        for f in batch.files
    ]


@dlt.source(name=SOURCE_NAME)
def interactions_source(files_glob: str, home: Path) -> list:
    """Resources `interactions`, `interactions_quarantine` and `source_files` for new CSV files."""
    loaded = dlt.current.source_state().get(STATE_KEY, {})
    batch = parse_files(new_files(files_glob, home, loaded))
    files = _file_counts(batch)

    @dlt.resource(
        name=s.RAW_INTERACTIONS_TABLE,
        primary_key=s.INTERACTION_KEY,
        write_disposition={"disposition": "merge", "strategy": "insert-only"},
    )
    def interactions() -> Iterator[pa.Table]:
        if batch.accepted is not None and batch.accepted.num_rows:
            yield batch.accepted

    @dlt.resource(
        name=s.RAW_QUARANTINE_TABLE,
        primary_key=("file_sha256", s.SOURCE_LINE),
        write_disposition={"disposition": "merge", "strategy": "insert-only"},
    )
    def quarantine() -> Iterator[pa.Table]:
        if batch.quarantined is not None and batch.quarantined.num_rows:
            yield batch.quarantined

    @dlt.resource(
        name=FILES_TABLE,
        primary_key="sha256",
        write_disposition="merge",
        columns={"error": {"data_type": "text", "nullable": True}},
    )
    def source_files() -> Iterator[list[dict]]:
        # State changes are kept only when made during extraction, so they are made here.
        state = dlt.current.source_state().setdefault(STATE_KEY, {})
        state.update({f["sha256"]: f["source_file"] for f in files if f["error"] is None})
        if files:
            yield files

    return [interactions, quarantine, source_files]
