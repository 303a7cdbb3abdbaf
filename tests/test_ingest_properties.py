"""Property (Hypothesis): whatever the drop folder holds, no byte from outside it reaches the
landing area, the warehouse or a log, and every regular file in it loads.

Names are arbitrary text (newlines, control characters, quotes, any script); entries are regular
files, symlinks to a file or a folder outside, symlink loops, dangling links, links within the
folder, folders named *.csv, and entries swapped at the moment between the listing and the open
(the test wraps the ingest's open: it stands for another process acting then) between a regular
file and a link leading out. The outside file holds a marker that is looked for in every landed
file, every text of the raw dataset and the captured log.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import duckdb
import pytest
from conftest import before_open as hook_before_open
from conftest import with_format
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dlt_pipelines.interactions_pipeline import load_interactions
from recomart_core import logs

HEADER = "user_id,item_id,rating,timestamp,event_type\n"
MARKER = "OUTSIDE-MARKER-d41c9"
KINDS = (
    "file",  # a regular file: loads
    "link_out",  # a symlink to the outside file: refused
    "link_out_dir",  # a symlink to an outside folder: no file, skipped
    "loop",  # a link to itself: refused
    "dangling",  # a link to nothing: skipped
    "link_in",  # a link to a regular file in the folder: loads (its content once)
    "dir",  # a folder named *.csv holding the marker in a file: skipped
    "swap_out",  # a regular file that becomes a link out at each open, and back: never leaks
    "swap_in",  # a link out that becomes a regular file at each open, and back
)
NAME = st.text(
    st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda n: len(f"{n}.csv".encode()) <= 200)
ENTRIES = st.lists(
    st.tuples(NAME, st.sampled_from(KINDS)), min_size=1, max_size=5, unique_by=lambda e: e[0]
)


def _good(n: int) -> str:
    return HEADER + f"user{n},item{n},4,2026-05-01 10:00:00,view\n"


def _place(folder: Path, path: Path, kind: str, n: int, outside: Path) -> None:
    """Make the entry `path` of `kind` (the n-th entry of the example)."""
    secret, secret_dir = outside / "secret.csv", outside / "dir"
    if kind in ("file", "swap_out"):
        path.write_text(_good(n))
    elif kind in ("link_out", "swap_in"):
        os.symlink(secret, path)
    elif kind == "link_out_dir":
        os.symlink(secret_dir, path)
    elif kind == "loop":
        os.symlink(path.name, path)
    elif kind == "dangling":
        os.symlink(outside / "nothing.csv", path)
    elif kind == "link_in":
        (folder / f".target{n}").write_text(_good(n))  # hidden: not matched by *.csv
        os.symlink(f".target{n}", path)
    elif kind == "dir":
        path.mkdir()
        (path / "inner.csv").write_text(HEADER + f"{MARKER},x,4,2026-05-01 10:00:00,view\n")


def _swap(path: Path, n: int, outside: Path) -> None:
    """Turn a regular file into a link out, or a link into a regular file (atomically)."""
    spare = path.parent.parent / "spare"
    spare.mkdir(exist_ok=True)
    if path.is_symlink():
        (spare / "f").write_text(_good(n))
        os.replace(spare / "f", path)
    else:
        os.symlink(outside / "secret.csv", spare / "l")
        os.replace(spare / "l", path)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(entries=[(".", "file"), ("a\nb", "link_out"), ("l", "loop")])  # "." found in CI
@given(entries=ENTRIES)
def test_no_byte_from_outside_the_folder_reaches_landing_warehouse_or_log(
    entries: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory() as root:
        home, outside = Path(root) / "home", Path(root) / "outside"
        folder = home / "in"
        folder.mkdir(parents=True)
        (outside / "dir").mkdir(parents=True)
        (outside / "secret.csv").write_text(
            HEADER + f"{MARKER},1,4,2026-05-01 10:00:00,view\nx,{MARKER},4,never,view\n"
        )
        (outside / "dir" / "a.csv").write_text(f"{MARKER}\n")
        swapped: dict[str, int] = {}
        for n, (name, kind) in enumerate(entries):
            _place(folder, folder / f"{name}.csv", kind, n, outside)
            if kind.startswith("swap"):
                swapped[f"{name}.csv"] = n

        def before_open(path: Path) -> None:
            if path.name in swapped:
                _swap(path, swapped[path.name], outside)

        hook_before_open(monkeypatch, before_open)
        records: list[str] = []
        handler = logging.Handler(logging.DEBUG)
        formatter = logs.formatter()
        handler.emit = lambda record: records.append(formatter.format(record))  # type: ignore[method-assign]
        root_logger = logging.getLogger()
        root_logger.addHandler(handler)
        level = root_logger.level
        root_logger.setLevel(logging.DEBUG)
        try:
            cfg = with_format(home)
            result = load_interactions(cfg, str(folder / "*.csv"))
        finally:
            root_logger.removeHandler(handler)
            root_logger.setLevel(level)
        landed = [p.read_bytes() for p in cfg.paths.raw.rglob("*") if p.is_file()]
        assert not any(MARKER.encode() in data for data in landed)
        with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
            tables = con.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'raw_interactions'"
            ).fetchall()
            stored = "".join(
                str(con.execute(f'select * from raw_interactions."{t}"').fetchall())
                for (t,) in tables
            )
            users = {u for (u,) in con.execute(
                "select user_id from raw_interactions.interactions"
            ).fetchall()} if ("interactions",) in tables else set()  # fmt: skip
        assert MARKER not in stored
        assert not any(MARKER in line for line in records)
        assert all("\n" not in line.replace("\n    | ", "") for line in records)
        # every plain file loaded its own row; a swapped one loaded its own row or was refused
        for n, (name, kind) in enumerate(entries):
            # a name that starts with a dot is hidden: `*.csv` does not match it (glob's rule)
            if kind in ("file", "link_in") and not name.startswith("."):
                assert f"user{n}" in users, (entries, result["files"])
