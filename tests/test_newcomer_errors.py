"""The failures a newcomer meets first say what happened and what to do, without a traceback.

Real processes, ports and locks: a second process holding the warehouse, a socket listening on the
port, an empty project home.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import config_for, run_stage, small_config

pytestmark = pytest.mark.e2e  # the command line in child processes, as a newcomer runs it

TINY = {"n_users": 60, "n_items": 20, "n_interactions": 600}


def _recomart(home: Path, cfg_file: Path, *args: str, timeout: int = 120) -> tuple[int, str]:
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(cfg_file)}
    env.pop("SOURCES__CATALOG__BASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "recomart.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return proc.returncode, proc.stderr


def _assert_advice(rc: int, stderr: str, *expected: str) -> None:
    assert rc == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert "what to do:" in stderr, stderr
    for text in expected:
        assert text in stderr, stderr


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path, small_config(tmp_path, **TINY)


@pytest.fixture
def generated_home(home: tuple[Path, Path]) -> tuple[Path, Path]:
    run_stage(*home, "generate")
    return home


def test_no_model_trained_yet(home: tuple[Path, Path]) -> None:
    rc, err = _recomart(*home, "recommend", "1")
    _assert_advice(rc, err, "no trained model yet", "make train")


def test_missing_input_files(home: tuple[Path, Path]) -> None:
    rc, err = _recomart(*home, "ingest", "--source", "interactions")
    assert rc == 1 and "Traceback" not in err, err
    assert "no interaction file matches" in err and "make generate" in err, err

    # a glob that matches only a folder is no file either: the same error, not "nothing new"
    folder = home[0] / "exports" / "2026-11.csv"
    folder.mkdir(parents=True)
    rc, err = _recomart(*home, "ingest", "--source", "interactions", "--files", str(folder))
    assert rc == 1 and "no interaction file matches" in err, err

    rc, err = _recomart(*home, "catalog-api", "--port", "0")
    _assert_advice(rc, err, "products.json does not exist", "make generate")


@pytest.mark.parametrize("server", ["catalog-api", "serve"])
def test_port_taken(generated_home: tuple[Path, Path], server: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, err = _recomart(*generated_home, server, "--port", str(port), timeout=60)
    _assert_advice(
        rc, err, f"port {port} is already in use by PID {os.getpid()}", f"recomart {server} --port"
    )


def test_warehouse_locked_by_another_process(generated_home: tuple[Path, Path]) -> None:
    home, cfg_file = generated_home
    warehouse = config_for(home, cfg_file).paths.warehouse
    run_stage(home, cfg_file, "ingest", "--source", "catalog")  # the warehouse exists
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time\n"
         f"con = duckdb.connect({str(warehouse)!r})\n"
         "print('locked', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        expected = (f"{warehouse} is locked by another process: PID {holder.pid}", "-readonly")
        for stage in (("ingest", "--source", "interactions"), ("summary",)):
            rc, err = _recomart(home, cfg_file, *stage)
            _assert_advice(rc, err, *expected, f"recomart {stage[0]}` again")
    finally:
        holder.stdin.close()  # the holder exits and releases the lock
        holder.wait(timeout=30)
