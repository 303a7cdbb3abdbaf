"""Logging: one console stream for the whole command, and a file per stage in logs/.

Lines look like `2026-01-15 10:30:45 - ingestion - INFO - Ingested 10000 interactions`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from recomart.core import config

FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"
F = TypeVar("F", bound=Callable)


def setup_console(level: int = logging.INFO) -> None:
    """Log to stderr in the stage format (call once, before any tool configures logging)."""
    root = logging.getLogger()
    if not any(getattr(h, "_recomart", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
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
            handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
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
