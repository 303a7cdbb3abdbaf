"""The drop folder: which interaction files are new (each read once, into a copy of ours), which
failed paths are settled, and where files are kept (the copies, the landing area).

Open the entries of the drop folder without ever leaving it, and copy what was opened.

A path is checked and then opened in one walk: each component is opened relative to the
descriptor of its parent with O_NOFOLLOW, so nothing swapped in between a check and a read can
lead elsewhere. A symbolic link on the way is read (readlink relative to the same descriptor) and
its target walked the same way: a link that stays inside the folder is followed, one that leads
out of it ('..' above the folder, an absolute target elsewhere) is refused, and so is a loop (more
than MAX_LINKS links on one path). The opened descriptor is checked with fstat (a regular file),
and from then on the file is read only through that descriptor: its bytes are copied, once, to a
file of ours, and everything after (the hash, the parse, the landing copy) reads that copy.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import itertools
import os
import re
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from uuid import uuid4

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from dlt_pipelines.common import landing_path
from dlt_pipelines.interactions.helpers import SourceFile
from dlt_pipelines.interactions.settings import (
    ALREADY_LOADED,
    FILES_TABLE,
    HASHED_KEY,
    REMOVED,
    SOURCE_NAME,
    STATE_KEY,
)
from dlt_pipelines.interactions.settings import staged_dir as staged_dir  # callers look here too
from recomart_core import config
from recomart_core import schema as s

WILDCARD = re.compile(r"[*?\[]")
NAME_BYTES = 255  # the longest file name most filesystems take

# Each path whose latest attempt (in load order) failed, with the content that failed. The quality
# contract's check "No file lacks a required column" picks the latest attempt the same way.
LATEST_FAILED_SQL = f"""
select {s.SOURCE_FILE}, sha256 from {{table}}
qualify row_number() over (
    partition by {s.SOURCE_FILE} order by cast(_dlt_load_id as double) desc
) = 1 and error is not null
"""


def _display_name(path: Path, home: Path) -> str:
    """The file's path relative to the project home when inside it, else absolute; bytes that
    are no UTF-8 (a name is any bytes but '/' and NUL) escaped as \\xNN."""
    name = str(path.relative_to(home)) if path.is_relative_to(home) else str(path)
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _fit(name: str, limit: int = NAME_BYTES) -> str:
    """A file name of at most `limit` UTF-8 bytes: the end kept (the extension)."""
    data = os.fsencode(name)
    if len(data) <= limit:
        return name
    return data[-limit:].decode("utf-8", "ignore") or "file"


@dataclass
class Listing:
    """The new files of a glob, and what each listed path held (display name -> sha256, or None
    when it was not read: refused)."""

    files: list[SourceFile]
    seen: dict[str, str | None]


def new_files(
    files_glob: str, home: Path, state: dict, copies: Path, since: datetime | None = None
) -> Listing:
    """Files matching the glob (sorted by name; modified at or after `since` when given) whose
    content was not loaded before, each copied once into the folder `copies` (open_beneath,
    copy_out): that copy, its sha256 and size are what is parsed, landed and recorded. A file
    unchanged since it was last read (same path, size and mtime, remembered in the state) is not
    read again when its content was loaded, or its copy is still there. Two paths with the same
    content in one listing: the first (by name) is loaded, the other skipped, as a later
    delivery of loaded content is. A link within the folder is recorded under its target's
    name. An entry that leads outside the folder or whose links loop is listed as refused,
    unread; a directory, FIFO or socket is skipped."""
    loaded, hashed = state.get(STATE_KEY, {}), state.setdefault(HASHED_KEY, {})
    written, folder = glob_folder(files_glob, resolved=False), glob_folder(files_glob)
    listing = Listing([], {})
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:  # no folder: nothing to list
        return listing
    copies.mkdir(parents=True, exist_ok=True)
    chosen: set[str] = set()
    try:
        for match in sorted(Path(p).absolute() for p in glob.glob(files_glob, recursive=True)):
            name = _display_name(match, home)
            try:
                opened = open_beneath(folder, folder_fd, _parts(match, written))
            except Refused as why:
                why_text = str(why).format(folder=folder)
                reason = f"{name}: refused, {why_text}; nothing of it was read"
                sha = hashlib.sha256(f"refused:{name}".encode()).hexdigest()
                listing.files.append(SourceFile(match, name, sha, refused=reason))
                listing.seen[name] = None
                continue
            if opened is None:
                continue
            # recorded under where it really is: a link within the folder by its target's name
            name = _display_name(folder.joinpath(*opened.parts), home)
            if since and datetime.fromtimestamp(opened.stat.st_mtime, UTC) < since:
                os.close(opened.fd)
                listing.seen[name] = ""  # there, not read: neither new nor known to be loaded
                continue
            try:
                found = _take(opened, match, name, hashed, loaded, copies)
            finally:
                os.close(opened.fd)
            listing.seen[name] = found.sha256
            if found.sha256 not in loaded and found.sha256 not in chosen:
                chosen.add(found.sha256)
                listing.files.append(found)
    finally:
        os.close(folder_fd)
    return listing


def _parts(match: Path, written: Path) -> tuple[str, ...]:
    """The components of a glob's match under the glob's folder (as written), or the match's
    own when it is not under it (a '..' or a link in the wildcard part: walked, and refused
    there, when they lead out)."""
    try:
        return match.relative_to(written).parts
    except ValueError:
        return ("..",)


def _take(
    opened: Opened,
    match: Path,
    name: str,
    hashed: dict,
    loaded: dict,
    copies: Path,
) -> SourceFile:
    """The SourceFile of an opened file: copied, unless its content is known to be loaded (by
    its fingerprint) or its copy is there already."""
    info = opened.stat
    fingerprint = [info.st_size, info.st_mtime_ns]
    known = hashed.get(str(match))
    if known and known[:2] == fingerprint:
        sha = known[2]
        copy = copies / _fit(f"{sha}_{match.name}")
        if sha in loaded:
            return SourceFile(match, name, sha, size=info.st_size)
        if copy.is_file():  # copied by this run's parse ahead
            return SourceFile(match, name, sha, copy=copy, size=copy.stat().st_size)
    partial = copies / f".partial-{uuid4().hex}"
    try:
        sha, size = copy_out(opened, partial)
        copy = copies / _fit(f"{sha}_{match.name}")
        os.replace(partial, copy)
    finally:
        partial.unlink(missing_ok=True)
    hashed[str(match)] = [*fingerprint, sha]
    return SourceFile(match, name, sha, copy=copy, size=size)


def glob_folder(files_glob: str, resolved: bool = True) -> Path:
    """The folder a glob reads from: its leading part without wildcards, symlinks resolved
    (or, resolved=False, as written, made absolute)."""
    parts = Path(files_glob).absolute().parts
    fixed = [part for part in itertools.takewhile(lambda x: not WILDCARD.search(x), parts)]
    folder = Path(*fixed)
    folder = folder if len(fixed) < len(parts) else folder.parent
    return folder.resolve() if resolved else folder


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


def settled_paths(failed: dict[str, str], listing: Listing, state: dict) -> list[dict]:
    """source_files rows for the failed paths (source_file -> sha256 that failed) not attempted
    again in this load (its `listing`, new_files) that need no attempt: a path gone (removed:
    not listed, or no regular file), or holding content loaded before (already loaded). A path
    whose content is still not loaded stays failed."""
    loaded = state.get(STATE_KEY, {})
    attempted, seen = {f.name for f in listing.files}, listing.seen
    rows = []
    for name, failed_sha in sorted(failed.items()):
        if name in attempted:
            continue
        if name not in seen:
            status, sha = REMOVED, failed_sha
        else:
            sha = seen[name]
            if sha is None or sha not in loaded:
                continue
            status = ALREADY_LOADED
        rows.append({
            "source_file": name, "sha256": sha, "size_bytes": 0, "rows": 0, "accepted": 0,
            "quarantined": 0, "error": None, "landed_as": None, "status": status,
        })  # fmt: skip
    return rows


def land(files: list[SourceFile], cfg: config.Config) -> dict[str, str]:
    """Keep each file, as it was read, in the landing area (a hard link to, else a copy of, the
    copy that is parsed); return sha256 -> landed path. Never a read of the original path."""
    landed = {}
    for f in files:
        if f.refused or f.copy is None:  # outside the folder: never read
            continue
        target = landing_path(cfg, SOURCE_NAME, "csv", _fit(f"{f.sha256[:12]}_{f.path.name}"))
        if not target.exists():
            try:
                os.link(f.copy, target)
            except OSError:  # another filesystem
                shutil.copyfile(f.copy, target)
        landed[f.sha256] = _display_name(target, cfg.paths.home)
    return landed


def copies_dir(stage_root: Path) -> Path:
    """Where the files read this run are copied (under the staging folder of the source, which
    is emptied after each load): the bytes parsed and landed."""
    return stage_root / "incoming"


# --- opening an entry beneath the folder, and copying it out -------------------------------------

MAX_LINKS = 40  # as the kernel's own limit on links followed while resolving one path
CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO never waits for a writer (it is then refused by fstat)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Refused(Exception):
    """The entry is not read: it leads outside the folder, or its links loop. The message is a
    template: `{folder}` stands for the folder's path."""


@dataclass(frozen=True)
class Opened:
    """A regular file opened inside the folder: its descriptor, its fstat, and the components
    of its path under the folder with every link followed (where the file really is)."""

    fd: int
    stat: os.stat_result
    parts: tuple[str, ...]


def open_beneath(folder: Path, folder_fd: int, parts: tuple[str, ...]) -> Opened | None:
    """Open the entry `parts` (path components under `folder`, whose descriptor is `folder_fd`)
    for reading, without leaving the folder.

    Returns the open regular file (the caller closes its fd), or None when the entry is gone
    or is no regular file (a directory, a FIFO, a socket, a device). Raises Refused when it
    leads outside the folder or its links loop.
    """
    stack = [os.dup(folder_fd)]  # descriptors of the folders walked, the folder itself first
    where: list[str] = []  # their names, below the folder
    todo = list(parts)
    links = 0
    try:
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) == 1:
                    raise Refused("it leads outside the configured folder {folder} ('..')")
                os.close(stack.pop())
                where.pop()
                continue
            flags = _FILE_FLAGS if not todo else _DIR_FLAGS
            try:
                fd = os.open(part, flags, dir_fd=stack[-1])
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENXIO):
                    return None  # gone meanwhile, or a socket: nothing to read
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    reason = exc.strerror or type(exc).__name__
                    raise Refused(
                        f"it cannot be opened ({reason}) in the folder {{folder}}"
                    ) from None
                target = _link_target(part, stack[-1])
                if target is None:  # not a link: a file where a folder was expected
                    return None
                links += 1
                if links > MAX_LINKS:
                    raise Refused(
                        f"a symlink loop (more than {MAX_LINKS} links on one path)"
                        " in the configured folder {folder}"
                    ) from None
                todo[:0] = _link_parts(target, folder, stack, where)
                continue
            if todo:
                stack.append(fd)
                where.append(part)
                continue
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                os.close(fd)
                return None
            return Opened(fd, info, (*where, part))
        return None  # the parts named the folder itself
    finally:
        for fd in stack:
            os.close(fd)


def _link_target(name: str, dir_fd: int) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # not a link
            return None
        if exc.errno == errno.ENOENT:  # removed meanwhile
            return None
        raise


def _link_parts(target: str, folder: Path, stack: list[int], where: list[str]) -> list[str]:
    """The components to walk for a link's target, from the folder the link is in. An absolute
    target restarts the walk at the folder, and must name a path under the folder's own (real)
    path; anything else leads outside."""
    path = PurePosixPath(target)
    if not path.is_absolute():
        return list(path.parts)
    try:
        inside = path.relative_to(folder)
    except ValueError:
        raise Refused(
            "it leads outside the configured folder {folder} (a symlink to an absolute path"
            " elsewhere)"
        ) from None
    while len(stack) > 1:
        os.close(stack.pop())
    where.clear()
    return list(inside.parts)


def copy_out(opened: Opened, target: Path) -> tuple[str, int]:
    """Copy everything the descriptor reads (from its start) to a new file `target`; return the
    sha256 and the size of the bytes copied, which are exactly the bytes of `target`. A file
    that grows or shrinks meanwhile yields whatever the reads returned, consistently."""
    digest = hashlib.sha256()
    size = 0
    os.lseek(opened.fd, 0, os.SEEK_SET)
    with target.open("xb") as out:
        while chunk := os.read(opened.fd, CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
