"""Which interaction files are new, and where they and their parsed rows are kept."""

from __future__ import annotations

import glob
import shutil
from datetime import UTC, datetime
from pathlib import Path

from dlt_pipelines.common import landing_path
from dlt_pipelines.interactions.helpers import SourceFile, file_sha256
from dlt_pipelines.interactions.settings import HASHED_KEY, SOURCE_NAME, STATE_KEY
from recomart.core import config


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


def staged_dir(cfg: config.Config) -> Path:
    """Where parsed rows wait as Parquet (a folder per load id) for the load that inserts them."""
    return cfg.paths.dlt_pipelines / "staged" / SOURCE_NAME
