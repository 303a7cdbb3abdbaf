"""A test hook: the interactions ingest kills itself with SIGKILL at a named point.

tests/test_crash_recovery.py sets RECOMART_CRASH_AT=<point> for a child `recomart ingest`; when the
run reaches that point the process is killed at once, as `kill -9` would (no cleanup, no
`finally`), and the test checks that a rerun still ends with the warehouse of one clean run. Unset,
as always outside that test, the hook costs a few environment lookups per run. The points, in run
order:

- `parsing`: the parse wrote the staged Parquet of accepted rows under its temporary name, not yet
  renamed (helpers.py); nothing extracted.
- `parsed`: the files are parsed and staged, and copied to the landing area; extraction has not
  committed anything yet (the source, __init__.py).
- `extracted`: dlt extracted: the load package (data and source state) is committed on disk, not
  normalized.
- `normalized`: the package is normalized; no load job has run.
- `loading`: a load job finished (its rows are in the warehouse); the others may or may not have
  run, and the package is not marked loaded, so a rerun runs them again.
"""

from __future__ import annotations

import os
import signal
from typing import Any, ClassVar

from dlt.common.runtime.collector import NullCollector

CRASH_AT = "RECOMART_CRASH_AT"
POINTS = ("parsing", "parsed", "extracted", "normalized", "loading")


def crash_point(point: str) -> None:
    """Test hook: SIGKILL this process here when $RECOMART_CRASH_AT names `point`."""
    if os.environ.get(CRASH_AT) == point:
        os.kill(os.getpid(), signal.SIGKILL)


class DltCrashPoints(NullCollector):
    """The points inside dlt's run, from what dlt reports to its progress collector: `extracted`
    and `normalized` when those steps ended without error (dlt's runtime trace, on by default),
    `loading` when a load job finished."""

    AFTER_STEP: ClassVar[dict[str, str]] = {"extract": "extracted", "normalize": "normalized"}

    def on_end_trace_step(self, trace: Any, step: Any, *args: Any, **kwargs: Any) -> None:
        if step.step_exception is None and step.step in self.AFTER_STEP:
            crash_point(self.AFTER_STEP[step.step])

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        if name == "Jobs" and inc > 0 and label is None:  # a load job finished
            crash_point("loading")
