"""Which interaction files are new, which failed paths are settled, and where files and their
parsed rows are kept."""

from __future__ import annotations

import glob
import hashlib
import itertools
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from dlt_pipelines.common import landing_path
from dlt_pipelines.interactions.helpers import SourceFile, file_sha256
from dlt_pipelines.interactions.settings import (
    ALREADY_LOADED,
    FILES_TABLE,
    HASHED_KEY,
    REMOVED,
    SOURCE_NAME,
    STATE_KEY,
)
from recomart.core import config
from recomart.core import schema as s

WILDCARD = re.compile(r"[*?\[]")

# Each path whose latest attempt (in load order) failed, with the content that failed. The quality
# contract's check "No file lacks a required column" picks the latest attempt the same way.
LATEST_FAILED_SQL = f"""
select {s.SOURCE_FILE}, sha256 from {{table}}
qualify row_number() over (
    partition by {s.SOURCE_FILE} order by cast(_dlt_load_id as double) desc
) = 1 and error is not null
"""


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
    folder = glob_folder(files_glob)
    found = []
    for match in sorted(Path(p).absolute() for p in glob.glob(files_glob, recursive=True)):
        p = match.resolve()
        if not p.is_file():
            continue
        if not p.is_relative_to(folder):  # a symlink or '..' leading out: never opened
            name = _display_name(match, home)
            reason = (
                f"{name}: refused, it leads outside the configured folder {folder} (a symlink "
                "or '..'); nothing of it was read"
            )
            sha = hashlib.sha256(f"refused:{match}".encode()).hexdigest()
            found.append(SourceFile(match, name, sha, refused=reason))
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


def glob_folder(files_glob: str) -> Path:
    """The folder a glob reads from: its leading part without wildcards, symlinks resolved."""
    parts = Path(files_glob).absolute().parts
    fixed = [part for part in itertools.takewhile(lambda x: not WILDCARD.search(x), parts)]
    folder = Path(*fixed)
    return (folder if len(fixed) < len(parts) else folder.parent).resolve()


def failed_paths(pipeline: dlt.Pipeline) -> dict[str, str]:
    """source_file -> sha256 of each path whose latest attempt failed, from the warehouse."""
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return {}
        table = client.make_qualified_table_name(FILES_TABLE)
        try:
            return dict(client.execute_sql(LATEST_FAILED_SQL.format(table=table)))
        except DatabaseUndefinedRelation:  # no file recorded yet
            return {}


def settled_paths(
    failed: dict[str, str], attempted: set[str], home: Path, state: dict
) -> list[dict]:
    """source_files rows for the failed paths (source_file -> sha256 that failed) not attempted
    again in this load that need no attempt: a path gone (removed), or holding content loaded
    before (already loaded). A path whose content is still not loaded stays failed."""
    loaded, hashed = state.get(STATE_KEY, {}), state.get(HASHED_KEY, {})
    rows = []
    for name, failed_sha in sorted(failed.items()):
        if name in attempted:
            continue
        path = home / name  # a name is relative to the home, or absolute
        if not path.is_file():
            status, sha, size = REMOVED, failed_sha, 0
        else:
            stat = path.stat()
            known = hashed.get(str(path.resolve()))
            fresh = known and known[:2] == [stat.st_size, stat.st_mtime_ns]
            sha, size = known[2] if fresh else file_sha256(path), stat.st_size
            if sha not in loaded:
                continue
            status = ALREADY_LOADED
        rows.append({
            "source_file": name, "sha256": sha, "size_bytes": size, "rows": 0, "accepted": 0,
            "quarantined": 0, "error": None, "landed_as": None, "status": status,
        })  # fmt: skip
    return rows


def land(files: list[SourceFile], cfg: config.Config) -> dict[str, str]:
    """Copy each file, as it arrived, to the landing area; return sha256 -> landed path."""
    landed = {}
    for f in files:
        if f.refused:  # outside the folder: never copied
            continue
        target = landing_path(cfg, SOURCE_NAME, "csv", f"{f.sha256[:12]}_{f.path.name}")
        if not target.exists():
            shutil.copy2(f.path, target)
        landed[f.sha256] = _display_name(target, cfg.paths.home)
    return landed


def staged_dir(cfg: config.Config) -> Path:
    """Where parsed rows wait as Parquet (a folder per load id) for the load that inserts them."""
    return cfg.paths.dlt_pipelines / "staged" / SOURCE_NAME
