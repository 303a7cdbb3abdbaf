"""Phase timings of a training run: every block runs under a name, so no time goes unaccounted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings(dict[str, float]):
    """{"<phase>_seconds": seconds}; a phase entered twice adds up."""

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            key = f"{name}_seconds"
            self[key] = self.get(key, 0.0) + time.perf_counter() - started

    def close(self, started: float) -> None:
        """Add total_seconds (since started, a perf_counter value) and untimed_seconds (the
        part of it no phase covers: should stay near zero)."""
        phases = sum(self.values())
        self["total_seconds"] = time.perf_counter() - started
        self["untimed_seconds"] = max(0.0, self["total_seconds"] - phases)
