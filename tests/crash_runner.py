"""Run `recomart`, killed with SIGKILL at a named point of the interactions ingest (a test tool).

`python tests/crash_runner.py <point> <recomart arguments...>`, e.g.
`python tests/crash_runner.py parsed ingest --source interactions`: the process dies at once, as
`kill -9` would (no cleanup, no `finally`), when the run reaches the point;
tests/test_crash_recovery.py then checks that a rerun still ends with the warehouse of one clean
run. Nothing of this is in the production code: the runner wraps functions of the ingest (the kill
comes when the wrapped function returns) and gives dlt a progress collector (dlt's own extension
point, which reports its steps and jobs), then calls the real `recomart` main.
The points, in run order:

- `parsing`: the parse wrote the staged Parquet of accepted rows under its temporary name, not yet
  renamed (after helpers.copy_accepted); nothing extracted.
- `parsed`: the files are copied to the landing area, parsed and staged; extraction has not
  committed anything yet (after the source's take_or_parse).
- `extracted`: dlt extracted: the load package (data and source state) is committed on disk, not
  normalized (the collector: the extract step ended without error, in dlt's runtime trace).
- `normalized`: the package is normalized; no load job has run (the same, for normalize).
- `loading`: a load job finished (its rows are in the warehouse); the others may or may not have
  run, and the package is not marked loaded, so a rerun runs them again (the collector's `Jobs`
  counter went up).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

POINTS = ("parsing", "parsed", "extracted", "normalized", "loading")
RUNNER = Path(__file__).resolve()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _die_after(module: Any, name: str) -> None:
    """Replace module.name with a wrapper that kills the process when the function returns."""
    func: Callable = getattr(module, name)

    @functools.wraps(func)
    def then_die(*args: Any, **kwargs: Any) -> Any:
        func(*args, **kwargs)
        _die()

    setattr(module, name, then_die)


def _dlt_collector(point: str) -> Any:
    """A dlt progress collector that kills the process at `point` (extracted, normalized,
    loading)."""
    from dlt.common.runtime.collector import NullCollector

    class CrashCollector(NullCollector):
        AFTER_STEP: ClassVar[dict[str, str]] = {"extract": "extracted", "normalize": "normalized"}

        def on_end_trace_step(self, trace: Any, step: Any, *args: Any, **kwargs: Any) -> None:
            if step.step_exception is None and self.AFTER_STEP.get(step.step) == point:
                _die()

        def update(self, name: str, inc: int = 1, *args: Any, label: str | None = None,
                   **kwargs: Any) -> None:  # fmt: skip
            if point == "loading" and name == "Jobs" and inc > 0 and label is None:
                _die()  # a load job finished

    return CrashCollector()


def arm(point: str) -> None:
    """Make this process die at `point` of the interactions ingest."""
    if point not in POINTS:
        raise SystemExit(f"unknown crash point {point!r}; one of {', '.join(POINTS)}")
    if point == "parsing":
        from dlt_pipelines.interactions import helpers

        _die_after(helpers, "copy_accepted")
    elif point == "parsed":
        import dlt_pipelines.interactions as source

        _die_after(source, "take_or_parse")
    else:
        from dlt_pipelines import interactions_pipeline as runner

        make_pipeline = runner.make_pipeline

        @functools.wraps(make_pipeline)
        def with_collector(*args: Any, **kwargs: Any) -> Any:
            return make_pipeline(*args, **kwargs, progress=_dlt_collector(point))

        runner.make_pipeline = with_collector


def main(argv: list[str] | None = None) -> int:
    point, *args = sys.argv[1:] if argv is None else argv
    arm(point)
    from recomart.cli import main as recomart

    return recomart(args)


if __name__ == "__main__":
    sys.exit(main())
