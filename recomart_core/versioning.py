"""What data a run used, in the terms DVC uses: no DVC import, only hashes and files.

- dir_md5(folder): the md5 DVC gives a directory (a `.dir` object: the md5 of the JSON list of
  {"md5", "relpath"} of its files, sorted by relpath), so a training run can record the version
  of data/features that `dvc checkout` or `dvc pull` restores;
- data_version(home, features): that md5 plus the git commit and a digest of dvc.lock, what each
  MLflow run records (recomart reproduce reads it back).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

CHUNK = 1 << 20
LOCK_FILE = "dvc.lock"


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dir_md5(folder: Path) -> str | None:
    """DVC's md5 of a directory ("<md5>.dir"), None when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    entries = [
        {"md5": file_md5(path), "relpath": path.relative_to(folder).as_posix()}
        for path in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix())
        if path.is_file()
    ]
    listing = json.dumps(entries).encode()
    return hashlib.md5(listing, usedforsecurity=False).hexdigest() + ".dir"


def git_commit(home: Path) -> str | None:
    """HEAD's commit of the git repository holding home, None outside one."""
    try:
        out = subprocess.run(
            ["git", "-C", str(home), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def data_version(home: Path, features: Path) -> dict[str, str]:
    """{features_md5, git_commit, dvc_lock_sha256}: those that exist, as MLflow tags."""
    lock = Path(home) / LOCK_FILE
    version = {
        "features_md5": dir_md5(features),
        "git_commit": git_commit(home),
        "dvc_lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest()
        if lock.is_file()
        else None,
    }
    return {key: value for key, value in version.items() if value}
