"""Named timings: every block runs under a name, so no time goes unaccounted (training's phases,
the catalog load's steps)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings(dict[str, float]):
    """{"<phase><suffix>": seconds}; a phase entered twice adds up."""

    def __init__(self, suffix: str = "_seconds") -> None:
        super().__init__()
        self.suffix = suffix

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            key = f"{name}{self.suffix}"
            self[key] = self.get(key, 0.0) + time.perf_counter() - started

    def close(self, started: float) -> None:
        """Add total and untimed (the part of the time since `started`, a perf_counter value,
        that no phase covers: should stay near zero)."""
        phases = sum(self.values())
        total = time.perf_counter() - started
        self[f"total{self.suffix}"] = total
        self[f"untimed{self.suffix}"] = max(0.0, total - phases)
