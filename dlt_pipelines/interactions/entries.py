"""Open the entries of the drop folder without ever leaving it, and copy what was opened.

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
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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
