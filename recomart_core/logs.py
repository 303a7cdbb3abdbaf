"""Logging: one console stream for the whole command, and a file per stage in logs/.

Lines look like `2026-01-15 10:30:45 - ingestion - INFO - Ingested 10000 interactions`.

Every record goes through one formatter (SafeFormatter), so no caller can forget to escape: the
values a message is given (file names, ids, exceptions: anything but numbers) have their control
characters escaped (a newline becomes `\\n`), and a line break in the rest of the record (the
message text we wrote, a traceback) is followed by an indent. A file named `x\\n2026-... - INFO -
FAKE` can therefore never write a line that looks like one of ours.
"""

from __future__ import annotations

import functools
import logging
import numbers
import re
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from recomart_core import config

FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"
F = TypeVar("F", bound=Callable)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1: \\n, \\r, ESC, NEL, ...
NOT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
CONTINUATION = "\n    | "  # how a line break inside one record shows


def escape(text: str) -> str:
    """`text` with each control character written as an escape (`\\n`, `\\x1b`, `\\x85`)."""
    return CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


def _value(arg: object) -> object:
    """A message argument as it may be logged: a number as it is (for %d, %.1f), anything else
    as its text, escaped."""
    if isinstance(arg, numbers.Number):
        return arg
    return escape(str(arg))


class SafeFormatter(logging.Formatter):
    """The stage format, escaped: each argument of a record with its control characters
    escaped, and every further line of the record (a line break in the message text, a
    traceback) indented, so one record is one line that starts with our timestamp, plus
    indented lines."""

    def format(self, record: logging.LogRecord) -> str:
        if record.args:
            safe = logging.makeLogRecord(record.__dict__)
            if isinstance(record.args, dict):
                safe.args = {k: _value(v) for k, v in record.args.items()}
            else:
                safe.args = tuple(_value(arg) for arg in record.args)
            record = safe
        text = super().format(record)
        text = NOT_NEWLINE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)
        return text.replace("\n", CONTINUATION)


def formatter() -> logging.Formatter:
    """The formatter of every handler we add."""
    return SafeFormatter(FORMAT, DATEFMT)


def setup_console(level: int = logging.INFO) -> None:
    """Log to stderr in the stage format (call once, before any tool configures logging)."""
    root = logging.getLogger()
    if not any(getattr(h, "_recomart", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(formatter())
        handler._recomart = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


def stage(name: str) -> Callable[[F], F]:
    """Decorate a stage function: while it runs, the log also goes to logs/<name>_<time>.log."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def run(cfg: config.Config, *args, **kwargs):
            cfg.paths.logs.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
            handler = logging.FileHandler(cfg.paths.logs / f"{name}_{stamp}.log")
            handler.setFormatter(formatter())
            root = logging.getLogger()
            root.addHandler(handler)
            try:
                return func(cfg, *args, **kwargs)
            except Exception as exc:
                logging.getLogger(name).error("%s failed: %s", name, exc)
                raise
            finally:
                root.removeHandler(handler)
                handler.close()

        return run  # type: ignore[return-value]

    return wrap
