"""A load killed with SIGKILL at any point, then run again, ends with the warehouse of a clean run.

The ingest is killed at a named point by a test runner (tests/crash_runner.py, which wraps the
ingest's functions and gives dlt a progress collector; nothing of it is in the production code):
mid-parse, parsed, extracted, normalized, and during the load. No timing.

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
from pathlib import Path

import duckdb
import pytest
from conftest import config_for, run_stage, small_config, with_code_under_test
from crash_runner import POINTS, RUNNER

pytestmark = pytest.mark.e2e
ROWS = 60_000

# What the warehouse holds, in a form two runs can be compared by: counts and a digest of keys.
STATE_SQL = {
    "interactions": "select count(*), md5(string_agg(concat_ws('|', user_id, item_id,"
    " \"timestamp\", rating, event_type, source_file, source_line), ',' order by source_file,"
    " source_line)) from raw_interactions.interactions",
    "quarantine": "select count(*), md5(string_agg(file_sha256 || source_line, ',' order by"
    " file_sha256, source_line)) from raw_interactions.interactions_quarantine",
    "files": "select count(*), sum(rows), sum(accepted), md5(string_agg(concat_ws('|', source_file,"
    " sha256, rows, accepted, quarantined, error, status), ',' order by source_file, sha256))"
    " from raw_interactions.source_files",
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


def _ingest_killed_at(home: Path, cfg_file: Path, point: str) -> None:
    """Run `recomart ingest --source interactions` through the crash runner set at `point`; it
    must die there by SIGKILL."""
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(cfg_file)}
    env.pop("SOURCES__CATALOG__BASE_URL", None)
    proc = subprocess.run(
        [sys.executable, str(RUNNER), point, "ingest", "--source", "interactions"],
        env=with_code_under_test(env), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, f"not killed at {point}:\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("crash")
    home, cfg_file = _new_home(root, "clean")
    run_stage(home, cfg_file, "generate")
    run_stage(home, cfg_file, "ingest", "--source", "interactions")
    return {"root": root, "generated": home / "data" / "generated", "state": _state(home)}


def _found(home: Path, pattern: str) -> list[Path]:
    """Files under the project's dlt folder (pipeline state, packages, staged Parquet)."""
    return list((home / "data" / "dlt").glob(pattern))


PACKAGES = "recomart_interactions/{}/*/{}/*"  # a package's jobs by step and job state
EXTRACTED = PACKAGES.format("normalize/extracted", "new_jobs")
NORMALIZED, LOADED_JOBS = (
    PACKAGES.format("load/normalized", s) for s in ("*_jobs", "completed_jobs")
)
STAGED = "staged/interactions/*/*"

# What each point leaves on disk (crash_runner.py says where the points are), so the test knows the
# kill came where it says: staged, extracted and normalized files, and jobs already loaded.
LEFT_BEHIND = {
    "parsing": lambda home: (
        any(p.name.endswith(".partial") for p in _found(home, STAGED))
        and not _found(home, EXTRACTED)
    ),
    "parsed": lambda home: (
        any(p.name == "accepted.parquet" for p in _found(home, STAGED))
        and not _found(home, EXTRACTED)
    ),
    "extracted": lambda home: bool(_found(home, EXTRACTED)) and not _found(home, NORMALIZED),
    "normalized": lambda home: bool(_found(home, NORMALIZED)) and not _found(home, LOADED_JOBS),
    "loading": lambda home: bool(_found(home, LOADED_JOBS)),
}


def test_every_crash_point_is_tested() -> None:
    assert set(LEFT_BEHIND) == set(POINTS)


@pytest.mark.parametrize("point", POINTS)
def test_killed_load_then_rerun_equals_a_clean_run(clean_run: dict, point: str) -> None:
    home, cfg_file = _new_home(clean_run["root"], point, clean_run["generated"])
    _ingest_killed_at(home, cfg_file, point)
    assert LEFT_BEHIND[point](home), f"the kill at {point} left another state behind"

    run_stage(home, cfg_file, "ingest", "--source", "interactions")

    assert _state(home) == clean_run["state"]
    assert clean_run["state"]["files"][1] == ROWS  # every row of the file accounted for
    assert not _found(home, STAGED)  # what the killed run staged is gone too
    # and a third run changes nothing
    run_stage(home, cfg_file, "ingest", "--source", "interactions")
    assert _state(home) == clean_run["state"]
    assert config_for(home, cfg_file).paths.warehouse.exists()
