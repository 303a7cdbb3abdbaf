"""Blue-green builds of the warehouse: dbt builds a candidate copy, the gate publishes it.

dbt rebuilds every mart (and appends feature history) before the quality gate can look at them.
So the transform stage does not build in the live warehouse: it copies the live file to a candidate
(`<name>.candidate.duckdb` beside it) and dbt builds there. The quality stage verifies the
candidate; only when the gate passes does the candidate replace the live file, in one atomic
rename. When the gate fails, the live warehouse (marts, history, everything the model and the
feature store read) stays exactly as it was, and the candidate stays beside it for inspection.

The candidate also holds the raw tables as they were when it was copied. Publishing refuses when
the live file changed since (another ingest, say): run the transform again, nothing is lost.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb

from recomart_core import config
from recomart_core.schema import MARTS_SCHEMA

log = logging.getLogger("transformation")
CANDIDATE_SUFFIX = ".candidate"


class PublishError(RuntimeError):
    """The candidate cannot replace the live warehouse; the message says what to do."""


def candidate_path(live: Path) -> Path:
    """Where the candidate of the live warehouse file `live` is built."""
    return live.with_name(f"{live.stem}{CANDIDATE_SUFFIX}{live.suffix}")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _origin_file(candidate: Path) -> Path:
    """The sidecar recording which state of the live file the candidate was copied from."""
    return candidate.with_name(candidate.name + ".origin.json")


def _fingerprint(path: Path) -> list[int] | None:
    if not path.exists():
        return None
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _checkpoint(path: Path) -> None:
    """Fold a leftover write-ahead log into the database file (a process that did not close)."""
    if _wal(path).exists():
        with duckdb.connect(str(path)) as con:
            con.execute("checkpoint").fetchall()


def _copy_quiet(live: Path, target: Path) -> None:
    """Copy the live file while holding it: opening it read-write fails while another process
    has it open (so nothing is copied mid-write); the checkpoint folds any write-ahead log in."""
    with duckdb.connect(str(live)) as con:
        con.execute("checkpoint").fetchall()
        shutil.copyfile(live, target)


def with_warehouse(cfg: config.Config, warehouse: Path) -> config.Config:
    """cfg with its warehouse path replaced (what dbt is pointed at)."""
    return replace(cfg, paths=replace(cfg.paths, warehouse=warehouse))


def prepare_candidate(cfg: config.Config) -> Path:
    """Copy the live warehouse to a fresh candidate file and return its path.

    Without a live warehouse (nothing ingested yet) the candidate starts empty.
    """
    live = cfg.paths.warehouse
    candidate = candidate_path(live)
    for stale in (candidate, _wal(candidate), _origin_file(candidate)):
        stale.unlink(missing_ok=True)
    if live.exists():
        partial = candidate.with_name(candidate.name + ".partial")
        _copy_quiet(live, partial)  # renamed only once complete
        partial.replace(candidate)
        log.info("building in a candidate copy of the warehouse: %s", candidate)
    _origin_file(candidate).write_text(json.dumps({"live": _fingerprint(live)}) + "\n")
    return candidate


def pending_candidate(cfg: config.Config) -> Path | None:
    """The candidate built by the last transform and not yet published, if any."""
    candidate = candidate_path(cfg.paths.warehouse)
    return candidate if candidate.exists() else None


def publish_candidate(cfg: config.Config) -> Path:
    """Atomically replace the live warehouse with the verified candidate; return the live path.

    Raises PublishError when the live file changed since the candidate was copied from it.
    """
    live = cfg.paths.warehouse
    candidate = candidate_path(live)
    origin_file = _origin_file(candidate)
    origin = json.loads(origin_file.read_text())["live"] if origin_file.exists() else None
    if _fingerprint(live) != origin or _wal(live).exists():
        raise PublishError(
            f"{live} changed after the candidate {candidate} was copied from it (a load in "
            "between?); the live warehouse was left as it is: run the transform stage again"
        )
    _checkpoint(candidate)
    candidate.replace(live)
    origin_file.unlink(missing_ok=True)
    log.info("published the verified candidate as the live warehouse %s", live)
    return live


def mart_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """{table: rows} of every table of the marts schema, by name (the transform summary, the
    Parquet export of the marts)."""
    tables = con.execute(
        "select table_name from information_schema.tables where table_schema = ?"
        " and table_type = 'BASE TABLE' order by table_name",
        [MARTS_SCHEMA],
    ).fetchall()
    return {
        name: con.execute(f'select count(*) from {MARTS_SCHEMA}."{name}"').fetchone()[0]
        for (name,) in tables
    }
