"""The raw contract's file check recovers once a failed file is fixed or removed.

A file without a required column loads nothing and fails the gate ("No file lacks a required
column"). The check counts each path by its latest attempt: a file fixed in place loads and clears
it, a removed file is settled by the next ingest and clears it, a file still broken and still there
keeps failing it. The failed attempts stay in raw_interactions.source_files.

Real files, the real dlt pipeline into a DuckDB file, and the real contract verified by Soda.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import config_for, small_config, warehouse_rows

from dlt_pipelines.interactions_pipeline import load_interactions
from recomart_core import config
from recomart_core.config import SODA_DIR
from soda_checks import gate as quality

pytestmark = pytest.mark.e2e  # a real ingest, then the raw Soda contract

CHECK = "No file lacks a required column"
HEADER = "user_id,item_id,rating,timestamp,event_type\n"
GOOD = HEADER + "1,10,4,2026-05-01 10:00:00,view\n2,20,5,2026-05-01 11:00:00,view\n"
NO_TIMESTAMP = "user_id,item_id,rating,event_type\n3,30,4,view\n"
FIXED = HEADER + "3,30,4,2026-05-02 10:00:00,view\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    return tmp_path


@pytest.fixture
def cfg(home: Path) -> config.Config:
    return config_for(home, small_config(home))


def _write(home: Path, name: str, text: str) -> Path:
    path = home / "in" / name
    path.write_text(text)
    return path


def _ingest(cfg: config.Config) -> dict:
    return load_interactions(cfg, str(cfg.paths.home / "in" / "*.csv"))


def _file_check(cfg: config.Config) -> tuple[str, float]:
    """(outcome, value) of the file check, from the raw interactions contract run by Soda."""
    result = quality.run_quality(cfg, contracts=[SODA_DIR / "raw_interactions.yml"])
    (summary,) = result["datasets"].values()
    check = next(c for c in summary["checks"] if c["name"] == CHECK)
    return check["outcome"], check["value"]


def _attempts(cfg: config.Config, name: str) -> list[tuple]:
    """(status, has an error, rows) of each attempt at in/<name>, in load order."""
    return warehouse_rows(
        cfg,
        "select status, error is not null, rows from raw_interactions.source_files"
        f" where source_file = 'in/{name}' order by cast(_dlt_load_id as double)",
    )


def test_a_file_fixed_in_place_clears_the_check(cfg: config.Config, home: Path) -> None:
    _write(home, "good.csv", GOOD)
    _write(home, "late.csv", NO_TIMESTAMP)
    first = _ingest(cfg)
    assert [f["error"] is not None for f in first["files"]] == [False, True]
    assert _file_check(cfg) == ("failed", 1)

    _write(home, "late.csv", FIXED)  # the same path, the missing column added
    second = _ingest(cfg)

    assert [(f["source_file"], f["error"], f["accepted"]) for f in second["files"]] == [
        ("in/late.csv", None, 1)
    ]
    assert _file_check(cfg) == ("passed", 0)
    # the failed attempt is still on record, before the one that loaded
    assert _attempts(cfg, "late.csv") == [("failed", True, 0), ("loaded", False, 1)]


def test_a_removed_file_clears_the_check(cfg: config.Config, home: Path) -> None:
    _write(home, "good.csv", GOOD)
    late = _write(home, "late.csv", NO_TIMESTAMP)
    _ingest(cfg)
    assert _file_check(cfg) == ("failed", 1)

    late.unlink()
    result = _ingest(cfg)

    assert result["files"] == []  # nothing new to parse
    assert result["settled"] == [{"source_file": "in/late.csv", "status": "removed"}]
    assert _file_check(cfg) == ("passed", 0)
    assert _attempts(cfg, "late.csv") == [("failed", True, 0), ("removed", False, 0)]
    # settled once: a further run adds nothing for it
    assert _ingest(cfg)["settled"] == []
    assert len(_attempts(cfg, "late.csv")) == 2


def test_a_file_still_broken_and_still_there_keeps_failing(cfg: config.Config, home: Path) -> None:
    _write(home, "good.csv", GOOD)
    _write(home, "late.csv", NO_TIMESTAMP)
    _write(home, "later.csv", NO_TIMESTAMP.replace("3,30", "4,40"))
    _ingest(cfg)
    assert _file_check(cfg) == ("failed", 2)

    _write(home, "later.csv", FIXED.replace("3,30", "4,40"))  # one of the two fixed
    result = _ingest(cfg)

    # the broken file is tried again and fails again; it alone fails the check, counted once
    assert [(f["source_file"], f["error"] is None) for f in result["files"]] == [
        ("in/late.csv", False),
        ("in/later.csv", True),
    ]
    assert _file_check(cfg) == ("failed", 1)
    assert _attempts(cfg, "late.csv") == [("failed", True, 0), ("failed", True, 0)]


def test_a_path_removed_then_delivered_broken_again_fails_again(
    cfg: config.Config, home: Path
) -> None:
    """The latest attempt counts, not whether the path ever loaded or was ever settled."""
    _write(home, "good.csv", GOOD)
    late = _write(home, "late.csv", NO_TIMESTAMP)
    _ingest(cfg)
    late.unlink()
    _ingest(cfg)
    assert _file_check(cfg) == ("passed", 0)

    _write(home, "late.csv", NO_TIMESTAMP)  # the same broken content, back at the same path
    _ingest(cfg)

    assert _file_check(cfg) == ("failed", 1)
    assert [a[0] for a in _attempts(cfg, "late.csv")] == ["failed", "removed", "failed"]


def test_a_failed_path_that_now_holds_loaded_content_clears_the_check(
    cfg: config.Config, home: Path
) -> None:
    """Fixed by copying in a file loaded before: nothing new to load, and nothing missing."""
    _write(home, "good.csv", GOOD)
    _write(home, "late.csv", NO_TIMESTAMP)
    _ingest(cfg)
    assert _file_check(cfg) == ("failed", 1)

    _write(home, "late.csv", GOOD)  # content already loaded (from good.csv)
    result = _ingest(cfg)

    assert result["files"] == []
    assert result["settled"] == [{"source_file": "in/late.csv", "status": "already loaded"}]
    assert _file_check(cfg) == ("passed", 0)
