"""The event spool: what POST /events accepted, made durable on local disk before anything else.

Files, in [paths] events (data/events under the project home), one per process and rotation:

    spool-<pid>-<start>-<seq>.jsonl.open    being written by a running server
    spool-<pid>-<start>-<seq>.jsonl         closed (rotated, or the server stopped): complete

<start> is the process's start (UTC, 20261207T221500Z), <seq> counts rotations from 0000. A
file is renamed from .jsonl.open to .jsonl atomically (the same folder) once its last line is
fsynced, and the folder is fsynced after the rename: a reader (the warehouse ingest, a
follow-up) takes *.jsonl files only, each complete. A .jsonl.open left by a crash holds every
line fsynced before it (an event is acknowledged before its fsync: see below) and at most one
partial last line, which a reader skips.

One event a line, UTF-8 JSON, every key present (null when not given):

    {"user_id": "u1", "session_id": null, "item_id": "sku-9", "event_type": "view",
     "timestamp": "2026-12-07T22:15:00.123456+00:00", "request_id": "r-1", "position": 3,
     "received_at": "2026-12-07T22:15:00.200000+00:00"}

event_type is one of our names (view, add_to_cart, purchase, return); timestamp is when the event
happened (the client's, else the time received), received_at when the API accepted it, both
ISO-8601 in UTC.

The request path only enqueues: put() hands a request's events to a bounded queue as one batch,
all or none, and raises SpoolFull when the queue is full (the route answers 503: an event is
never dropped silently). A writer thread drains the queue, appends the lines, flushes and fsyncs
once per round (everything queued when it woke, up to flush_events events), and rotates the file
above rotate_bytes. So an accepted event is on disk within one round (milliseconds), and is lost
only if the machine fails within that round. The writer starts with the first event (a server
that receives none writes no file); close() drains the queue, fsyncs and renames.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("recomart.serving")

OPEN_SUFFIX = ".jsonl.open"  # being written
DONE_SUFFIX = ".jsonl"  # complete: ready for ingest
FIELDS = (
    "user_id", "session_id", "item_id", "event_type", "timestamp", "request_id", "position",
    "received_at",
)  # fmt: skip
_STOP = object()  # the queue's last entry: close() asks the writer to finish


class SpoolFull(Exception):
    """The queue is full (the disk is slower than the events), or the writer failed: the
    events were not accepted."""


class Spool:
    """Durable append-only event files (the module docstring): put() from the request path, a
    writer thread to disk.

    folder: where the files go ([paths] events); queue_batches: put() calls waiting at most
    (each one request's events); flush_events: events written per fsync at most;
    rotate_bytes: a file above this is closed and a new one opened."""

    def __init__(
        self,
        folder: Path,
        queue_batches: int = 1024,
        flush_events: int = 4096,
        rotate_bytes: int = 64 * 1024**2,
    ) -> None:
        self.folder = Path(folder)
        self.flush_events = flush_events
        self.rotate_bytes = rotate_bytes
        self.written = 0  # events fsynced so far
        self.files: list[Path] = []  # completed files (renamed to .jsonl)
        self.error: str | None = None  # the writer's failure, if it failed
        self._queue: queue.Queue = queue.Queue(maxsize=queue_batches)
        self._stem = f"spool-{os.getpid()}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        self._seq = 0
        self._file = None
        self._path: Path | None = None
        self._size = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._writing = threading.Lock()  # held by the writer while it writes a round
        self._closed = False

    # ------------------------------------------------------------ request path
    def put(self, events: list[dict[str, Any]]) -> None:
        """Queue one request's events (dicts with FIELDS' keys) as one batch; SpoolFull when
        the queue is full, the writer failed or the spool is closed."""
        if self._thread is None:
            self._start()
        if self._closed or self.error is not None:
            raise SpoolFull(self.error or "the event spool is closed")
        try:
            self._queue.put_nowait(events)
        except queue.Full:
            raise SpoolFull(
                f"the event spool's queue is full ({self._queue.maxsize} requests waiting for"
                " the disk)"
            ) from None

    @property
    def path(self) -> Path | None:
        """The file being written (None before the first event and after close)."""
        return self._path

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the writer between rounds while inside (a copy of the open file; a test filling
        the queue): put() keeps queueing until the queue is full."""
        with self._writing:
            yield

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, fsync, rename the file to .jsonl, stop the writer."""
        with self._start_lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        try:  # waits while the queue is full: the writer is draining it
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:  # the writer is gone (self.error says why): nothing to wait for
            log.error("the event spool's writer did not take the stop: %s", self.error)
            return
        thread.join(timeout)

    # ------------------------------------------------------------------ writer
    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._thread = threading.Thread(target=self._run, name="event-spool", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batches = [self._queue.get()]
            with self._writing:
                count = len(batches[0]) if batches[0] is not _STOP else 0
                while count < self.flush_events:  # what else is waiting, up to a round
                    try:
                        batch = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batches.append(batch)
                    count += len(batch) if batch is not _STOP else 0
                stopping = any(batch is _STOP for batch in batches)
                events = [e for batch in batches if batch is not _STOP for e in batch]
                try:
                    if events:
                        self._write(events)
                    if stopping or self._size >= self.rotate_bytes:
                        self._finish()
                except OSError as exc:  # disk full, folder gone: refuse events from now on
                    self.error = f"the event spool failed: {exc}"
                    log.exception(self.error)
                    stopping = True

    def _write(self, events: list[dict[str, Any]]) -> None:
        """Append the events as lines, flush and fsync (one round)."""
        if self._file is None:
            self._path = self.folder / f"{self._stem}-{self._seq:04d}{OPEN_SUFFIX}"
            self._file = open(self._path, "ab")  # noqa: SIM115 (open across rounds)
            self._size = 0
        data = b"".join(orjson.dumps({k: e.get(k) for k in FIELDS}) + b"\n" for e in events)
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._size += len(data)
        self.written += len(events)

    def _finish(self) -> None:
        """Close the open file and rename it to .jsonl (then fsync the folder)."""
        if self._file is None:
            return
        self._file.close()
        done = self._path.with_name(self._path.name.removesuffix(OPEN_SUFFIX) + DONE_SUFFIX)
        os.replace(self._path, done)
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.files.append(done)
        self._file, self._path = None, None
        self._seq += 1


def now_iso() -> str:
    """The current time as ISO-8601 in UTC (what the spool writes)."""
    return datetime.now(UTC).isoformat()


def wait_written(spool: Spool, n: int, timeout: float = 10.0) -> bool:
    """True once spool.written reaches n (within timeout seconds): a test's or a script's wait
    for the writer."""
    deadline = time.monotonic() + timeout
    while spool.written < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
