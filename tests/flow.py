"""Follow the data through our code: the files of ours a stage runs in, in order.

`python -m tests.flow ingest` (from the project root) runs the real `pipeline.ingest` of the
interactions source over a small CSV (a config and a file as tests/test_interactions_ingest.py
makes them: good rows and one row for the quarantine) in a temporary home, under sys.setprofile,
and prints what it saw. `follow_ingest()` returns the same as a Flow (tests/test_flow.py).

`python -m tests.flow train` runs the real `pipeline.train` (the [train] settings from the
project's recomart.toml, passed down from there) on a small marts warehouse
(tests/synthetic_marts.py) in a temporary home with its own MLflow store; `follow_train()`
returns its Flow. Its files of ours are models_ml/ and feature_store/ (and recomart/pipeline.py);
the ground is recomart_core/.

The rules of the count:

- A call is a Python `call` event (a function entered, or a generator resumed) of a function
  defined in our code: files under dlt_pipelines/ and recomart_core/, and recomart/pipeline.py.
  Calls into anything else (dlt, DuckDB, the standard library) are not recorded and do not end a
  stay: ours -> dlt -> ours in the same file is one stay.
- Each thread is followed on its own (its calls in order): the main thread, and the threads the
  ingest starts (the parse ahead, the landing copy). A thread's consecutive calls in the same file
  are one stay; a file's visits are its stays in all threads. Threads are listed in the order they
  first called our code.
- Ground: recomart_core/ (config, settings, schema, logs, env, timing: the ground floor, called as
  utilities from every floor), and the two modules both dlt pipelines (catalog and interactions)
  share as utilities, dlt_pipelines/common.py (make_pipeline, open_warehouse, landing_path) and
  dlt_pipelines/sql.py (a SQL string literal, the id macro), are not stays. A call into them
  neither starts a stay nor ends the caller's; they are tallied apart, as calls per file.

What goes in: nothing (the tool makes its own home and file). What comes out: the stays (file and
the functions called in it, in order), visits per file, and the most visits of any file.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
OURS = ("dlt_pipelines/", "recomart_core/", "recomart/pipeline.py")
GROUND = ("recomart_core/", "dlt_pipelines/common.py", "dlt_pipelines/sql.py")
TRAIN_OURS = ("models_ml/", "feature_store/", "recomart_core/", "recomart/pipeline.py")
TRAIN_GROUND = ("recomart_core/",)
CSV = (
    "user_id,item_id,rating,timestamp,event_type\n"
    "1,10,4.5,2026-05-01 10:00:00,view\n"
    "2,11,3.5,1777000000,add_to_cart\n"
    "3,12,5,2026-05-01T10:00:00Z,purchase\n"
    "4,13,1,not a time,view\n"
)


@dataclass
class Stay:
    """Consecutive calls of one thread in one file of ours: the file, the functions in order."""

    file: str
    functions: list[str] = field(default_factory=list)


@dataclass
class Flow:
    """Per thread (by order of first call), its stays; the calls into ground files."""

    threads: list[list[Stay]]
    ground: Counter

    @property
    def visits(self) -> Counter:
        """File -> stays in it, over all threads."""
        return Counter(stay.file for stays in self.threads for stay in stays)

    @property
    def most(self) -> tuple[str, int]:
        """The most visited file and its visits."""
        return self.visits.most_common(1)[0]


class _Recorder:
    """A profile function keeping, per thread, the stays in our files."""

    def __init__(
        self,
        ours: tuple[str, ...] = OURS,
        ground: tuple[str, ...] = GROUND,
        carried: set[int] | None = None,
    ) -> None:
        self.ours, self.ground_files = ours, ground
        self.carried = carried  # when given: only calls that are handed one of these objects
        self.by_thread: dict[int, list[Stay]] = {}  # by the thread's first call
        self.ground: Counter = Counter()
        self._names: dict[object, str | None] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # a thread's own key (a thread id is reused once it ends)

    def _ours(self, filename: str) -> str | None:
        """The file's path under the project when it is ours, else None."""
        if filename not in self._names:
            path = Path(filename)
            rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else ""
            self._names[filename] = rel if rel.startswith(self.ours) else None
        return self._names[filename]

    def __call__(self, frame, event: str, arg: object) -> None:
        if event != "call":
            return
        code = frame.f_code
        name = self._ours(code.co_filename)
        if name is None:
            return
        with self._lock:
            if self.carried is not None and not self._handed(frame):
                return
            if name.startswith(self.ground_files):
                self.ground[name] += 1
                return
            key = getattr(self._local, "key", None)
            if key is None:
                key = self._local.key = len(self.by_thread)
            stays = self.by_thread.setdefault(key, [])
            if not stays or stays[-1].file != name:
                stays.append(Stay(name))
            function = code.co_qualname
            if function not in stays[-1].functions:
                stays[-1].functions.append(function)

    def _handed(self, frame) -> bool:
        """Whether the call's arguments include a carried object, or an object that holds one
        as an attribute of its own (a run's state holding the [train] settings)."""
        code = frame.f_code
        count = code.co_argcount + code.co_kwonlyargcount
        count += bool(code.co_flags & inspect.CO_VARARGS) + bool(
            code.co_flags & inspect.CO_VARKEYWORDS
        )
        for name in code.co_varnames[:count]:
            value = frame.f_locals.get(name)
            if isinstance(value, dict):  # **kwargs (or a dict argument): its values
                values = list(value.values())
            elif isinstance(value, tuple):  # *args
                values = list(value)
            else:
                values = [value]
            for one in values:
                if id(one) in self.carried:
                    return True
                held = getattr(one, "__dict__", None)
                if isinstance(held, dict) and any(id(v) in self.carried for v in held.values()):
                    return True
        return False


def settings_objects(cfg) -> set[int]:
    """The ids of the Config and of every settings object in it (pydantic models, dataclasses,
    their dicts and lists): what "the settings" are when they are followed."""
    seen: dict[int, object] = {}

    def walk(value: object) -> None:
        if id(value) in seen:
            return
        if isinstance(value, BaseModel):
            seen[id(value)] = value
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            seen[id(value)] = value
            for item in dataclasses.fields(value):
                walk(getattr(value, item.name))
        elif isinstance(value, dict):
            seen[id(value)] = value
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple) and value:
            seen[id(value)] = value
            for item in value:
                walk(item)

    walk(cfg)
    return set(seen)


def follow_ingest() -> Flow:
    """Run `pipeline.ingest(cfg, "interactions")` over a small CSV in a temporary home, followed
    through our code; the Flow it took."""
    if str(TESTS) not in sys.path:  # conftest: the test helpers that make a config
        sys.path.insert(0, str(TESTS))
    from conftest import with_format

    from recomart import pipeline

    with tempfile.TemporaryDirectory(prefix="flow-") as tmp:
        home = Path(tmp)
        (home / "in").mkdir()
        (home / "in" / "shop.csv").write_text(CSV)
        cfg = with_format(home)
        recorder = _Recorder()
        threading.setprofile(recorder)
        sys.setprofile(recorder)
        try:
            result = pipeline.ingest(cfg, "interactions", files=str(home / "in" / "*.csv"))
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
    counts = result["interactions"]["files"]
    if [(f["accepted"], f["quarantined"]) for f in counts] != [(3, 1)]:
        raise RuntimeError(f"the ingest did not load what it should have: {counts}")
    return Flow(list(recorder.by_thread.values()), recorder.ground)


def follow_train() -> Flow:
    """Run `pipeline.train(cfg)` on a small marts warehouse in a temporary home (the project's
    recomart.toml, its own MLflow store), followed through our code; the Flow it took."""
    if str(TESTS) not in sys.path:  # the test helpers that write marts
        sys.path.insert(0, str(TESTS))
    from conftest import config_for
    from synthetic_marts import planted_interactions, write_marts

    from recomart import pipeline

    with tempfile.TemporaryDirectory(prefix="flow-") as tmp:
        home = Path(tmp)
        (home / "recomart.toml").write_text((ROOT / "recomart.toml").read_text())
        cfg = config_for(home, home / "recomart.toml")
        interactions, catalog = planted_interactions(
            n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=5
        )
        write_marts(cfg.paths.warehouse, interactions, catalog)
        recorder = _Recorder(TRAIN_OURS, TRAIN_GROUND, settings_objects(cfg))
        here = os.getcwd()
        os.chdir(home)  # anything written to the working directory stays in the home
        threading.setprofile(recorder)
        sys.setprofile(recorder)
        try:
            summary = pipeline.train(cfg)
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]
            os.chdir(here)
    if not summary.get("promotion", {}).get("promote"):
        raise RuntimeError(f"the training did not promote its model: {summary.get('promotion')}")
    return Flow(list(recorder.by_thread.values()), recorder.ground)


FOLLOW = {"ingest": follow_ingest, "train": follow_train}


def report(flow: Flow) -> str:
    """The stays, thread by thread, then visits per file, as text."""
    lines = []
    for number, stays in enumerate(flow.threads):
        lines.append(f"thread {number}:" if number else "main thread:")
        for i, stay in enumerate(stays, 1):
            shown = ", ".join(stay.functions[:6]) + (" ..." if len(stay.functions) > 6 else "")
            lines.append(f"  {i:3d}. {stay.file}: {shown}")
    stays = sum(len(t) for t in flow.threads)
    lines.append(f"\nvisits per file ({stays} stays):")
    lines += [f"  {n:3d}  {file}" for file, n in flow.visits.most_common()]
    lines.append("ground (not stays), calls per file:")
    lines += [f"  {n:5d}  {file}" for file, n in flow.ground.most_common()]
    file, n = flow.most
    lines.append(f"most visits: {n} ({file})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.flow", description=__doc__.split("\n")[0]
    )
    parser.add_argument("what", choices=sorted(FOLLOW), help="the flow to follow")
    args = parser.parse_args(argv)
    print(report(FOLLOW[args.what]()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
