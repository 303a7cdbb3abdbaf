"""A load killed with SIGKILL at any point, then run again, ends with the warehouse of a clean run.

dlt commits a load package (data and source state together) atomically per step; a rerun first
finishes any package a killed run left behind, and rows are inserted only when their key is new
(one INSERT ... WHERE NOT EXISTS per table, so a job run twice inserts nothing twice).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import config_for, run_stage, small_config

pytestmark = pytest.mark.e2e
ROWS = 60_000

# What the warehouse holds, in a form two runs can be compared by: counts and a digest of keys.
STATE_SQL = {
    "interactions": "select count(*), md5(string_agg(concat_ws('|', user_id, item_id,"
    " \"timestamp\", rating, event_type, source_file, source_line), ',' order by source_file,"
    " source_line)) from raw_interactions.interactions",
    "quarantine": "select count(*), md5(string_agg(file_sha256 || source_line, ',' order by"
    " file_sha256, source_line)) from raw_interactions.interactions_quarantine",
    "files": "select count(*), sum(rows), sum(accepted) from raw_interactions.source_files",
}


def _state(home: Path) -> dict:
    with duckdb.connect(str(home / "data" / "warehouse" / "recomart.duckdb"), read_only=True) as c:
        return {name: c.execute(sql).fetchone() for name, sql in STATE_SQL.items()}


def _new_home(root: Path, name: str, generated: Path | None = None) -> tuple[Path, Path]:
    home = root / name
    home.mkdir()
    cfg_file = small_config(home, n_interactions=ROWS)
    if generated:
        shutil.copytree(generated, home / "data" / "generated")
    return home, cfg_file


def _ingest_killed_when(home: Path, cfg_file: Path, ready) -> None:
    """Start `recomart ingest --source interactions`, SIGKILL it as soon as ready() is true."""
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(cfg_file)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "recomart.cli", "ingest", "--source", "interactions"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the load finished before it could be killed"


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("crash")
    home, cfg_file = _new_home(root, "clean")
    run_stage(home, cfg_file, "generate")
    started = time.monotonic()
    run_stage(home, cfg_file, "ingest", "--source", "interactions")
    return {
        "root": root,
        "generated": home / "data" / "generated",
        "state": _state(home),
        "seconds": time.monotonic() - started,
    }


def _pipeline_dir(home: Path) -> Path:
    return home / "data" / "dlt" / "recomart_interactions"


KILL_POINTS = {
    # while reading and parsing the files, before anything is extracted
    "during_parse": lambda home, t0, clean_s: time.monotonic() - t0 > 0.35 * clean_s,
    # extracted (data and state in a package on disk), not yet normalized
    "after_extract": lambda home, t0, clean_s: any(
        (_pipeline_dir(home) / "normalize" / "extracted").glob("*/new_jobs/*")
    ),
    # normalized, while the load jobs run against DuckDB
    "during_load": lambda home, t0, clean_s: any(
        (_pipeline_dir(home) / "load" / "normalized").glob("*/*_jobs/*")
    ),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_load_then_rerun_equals_a_clean_run(clean_run: dict, point: str) -> None:
    home, cfg_file = _new_home(clean_run["root"], point, clean_run["generated"])
    t0 = time.monotonic()
    check = KILL_POINTS[point]
    _ingest_killed_when(home, cfg_file, lambda: check(home, t0, clean_run["seconds"]))
    run_stage(home, cfg_file, "ingest", "--source", "interactions")
    assert _state(home) == clean_run["state"]
    assert clean_run["state"]["files"][1] == ROWS  # every row of the file accounted for
    # and a third run changes nothing
    run_stage(home, cfg_file, "ingest", "--source", "interactions")
    assert _state(home) == clean_run["state"]
    assert config_for(home, cfg_file).paths.warehouse.exists()
