"""Parse ahead: start parsing the new files while dlt is still setting up the run.

The files to load are decided during extraction, from the state dlt commits with the load (a rerun
after a crash may restore or wipe the local state first). Parsing is the longest step, so it starts
early on a guess, the files new by the local state as it is before the run, on another thread
(DuckDB runs without the GIL). Extraction then decides for real; when the guess was right (the
usual case) it takes the parsed batch, else it discards it and parses what it decided.
"""

from __future__ import annotations

import copy
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from uuid import uuid4

import dlt
import pandas  # noqa: F401  (see below)

from dlt_pipelines.interactions.files import copies_dir, new_files
from dlt_pipelines.interactions.helpers import CsvFormat, ParsedBatch, SourceFile, parse_files
from dlt_pipelines.interactions.settings import HASHED_KEY, SOURCE_NAME

# pandas is imported here, before the parse thread can start: that thread's libraries import it on
# first use, and dlt, probing the module on the main thread, fails on a half-imported pandas.


class ParseAhead:
    """A parse of the files new by the pipeline's local state, running on its own thread."""

    def __init__(
        self,
        pipeline: dlt.Pipeline,
        files_glob: str,
        home: Path,
        fmt: CsvFormat,
        stage_root: Path,
        since: datetime | None = None,
    ) -> None:
        state = copy.deepcopy(pipeline.state.get("sources", {}).get(SOURCE_NAME, {}))
        self.stage_root = stage_root
        self.files = new_files(files_glob, home, state, copies_dir(stage_root), since).files
        self.hashed = state.get(HASHED_KEY, {})  # spares extraction hashing the files again
        self.stage = stage_root / f"ahead-{uuid4().hex}"
        self.taken = False  # by extraction (take): then nothing is left to close
        self._pool = ThreadPoolExecutor(1)
        self._parsed: Future[ParsedBatch] = self._pool.submit(
            parse_files, self.files, fmt, self.stage
        )
        self._pool.shutdown(wait=False)

    def take(self, files: list[SourceFile], stage: Path) -> ParsedBatch | None:
        """The parsed batch moved to `stage`, when it parsed exactly `files`; else None (and the
        guess is thrown away). A failed parse raises here, as it would have in extraction."""
        batch = self._parsed.result()
        self.taken = True
        if [(f.path, f.sha256) for f in files] != [(f.path, f.sha256) for f in self.files]:
            shutil.rmtree(self.stage, ignore_errors=True)
            return None
        if self.stage.exists():
            self.stage.rename(stage)
        if batch.accepted is not None:
            batch = replace(batch, accepted=stage / batch.accepted.name)
        return batch

    def close(self) -> None:
        """Wait for the parse and remove what was not taken (needed only when take() was not
        called: say, extraction failed first)."""
        self._parsed.exception()  # waits; an error was raised by take(), or does not matter now
        shutil.rmtree(self.stage, ignore_errors=True)


def take_or_parse(
    files: list[SourceFile], fmt: CsvFormat, stage: Path, ahead: ParseAhead | None = None
) -> ParsedBatch:
    """The parse of `files`, staged in the folder `stage`: the one `ahead` made, when it parsed
    exactly these files; else parsed here."""
    batch = ahead.take(files, stage) if ahead is not None else None
    return batch if batch is not None else parse_files(files, fmt, stage)
