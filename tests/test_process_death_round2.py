"""A process killed outright (`kill -9`, out of memory) leaves nothing behind (issue 26).

- Its MLflow run: a run cannot end itself when its process is killed, and MLflow showed it
  RUNNING for ever. Runs carry the process that owns them (host, pid, start time); the next run
  of the experiment marks the runs of gone processes FAILED, and leaves the runs of live
  processes, other hosts and untagged runs alone.
- Its dbt child: dbt runs in its own process, which went on running (and holding the warehouse
  file) when the stage that started it was killed. The child now ends with its parent.

Real processes, real MLflow (SQLite store) and real dbt; no timed assertion: each wait has a
generous deadline and then asserts on the state it saw.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import small_config, with_code_under_test
from mlflow.tracking import MlflowClient

from models_ml import tracking

T = TypeVar("T")
DEADLINE_S = 120  # generous: a wait ends as soon as its state is reached

RUN_AND_WAIT = """
import sys, time
from pathlib import Path
from models_ml import tracking
experiment = tracking.use_experiment(Path(sys.argv[1]))
run = tracking.start_run(experiment)
print(run.info.run_id, flush=True)
time.sleep(600)
"""


def _wait_for(probe: Callable[[], T | None], what: str) -> T:
    """probe()'s first truthy value, polled until DEADLINE_S; fails naming `what` after it."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.2)
    pytest.fail(f"no {what} within {DEADLINE_S} s")


def _run_holder(mlflow_dir: Path) -> tuple[subprocess.Popen, str]:
    """A child process holding a started run; (the process, its run id)."""
    child = subprocess.Popen(
        [sys.executable, "-c", RUN_AND_WAIT, str(mlflow_dir)],
        env=with_code_under_test(dict(os.environ)), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    return child, child.stdout.readline().strip()


def test_the_next_run_marks_the_runs_of_killed_processes_failed(tmp_path: Path) -> None:
    mlflow_dir = tmp_path / "mlflow"
    killed, killed_run = _run_holder(mlflow_dir)
    alive, alive_run = _run_holder(mlflow_dir)
    try:
        assert killed_run and alive_run
        killed.send_signal(signal.SIGKILL)
        killed.wait()

        experiment = tracking.use_experiment(mlflow_dir)
        client = MlflowClient(tracking.tracking_uri(mlflow_dir))
        untagged = client.create_run(experiment).info.run_id  # another tool's run
        assert client.get_run(killed_run).info.status == "RUNNING"  # what kill -9 leaves
        with tracking.start_run(experiment) as run:
            new_run = run.info.run_id

        statuses = {
            name: client.get_run(run_id).info.status
            for name, run_id in [("killed", killed_run), ("alive", alive_run),
                                 ("untagged", untagged), ("new", new_run)]
        }  # fmt: skip
        assert statuses == {
            "killed": "FAILED", "alive": "RUNNING", "untagged": "RUNNING", "new": "FINISHED",
        }  # fmt: skip
        ended = client.get_run(killed_run).data.tags[tracking.ENDED_TAG]
        assert f" {killed.pid} " in ended and "killed" in ended
        owner = client.get_run(new_run).data.tags[tracking.PROCESS_TAG]
        assert owner == tracking.process_identity(os.getpid())
    finally:
        alive.kill()
        alive.wait()


def test_a_process_is_known_by_host_pid_and_start_time() -> None:
    """The identity holds the process's start time: a pid reused later is another process."""
    me = tracking.process_identity(os.getpid())
    host, pid, started = me.split(" ")
    assert host == socket.gethostname() and pid == str(os.getpid()) and int(started) > 0
    assert tracking.process_identity(os.getpid()) == me
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert tracking.process_identity(child.pid) is None  # gone


# ---------------------------------------------------------------------------------------------
# The dbt child

# the parent: the transform stage's own dbt runner, on a dbt command that takes minutes
PARENT = """
import sys
from pathlib import Path
from dbt_project.build import run_dbt
from recomart_core import config
from recomart_core.warehouse import with_warehouse
cfg = with_warehouse(config.load(), Path(sys.argv[1]))
run_dbt(["show", "--inline", sys.argv[2]], cfg)
"""
SLOW_SQL = "select count(*) from range(1000000000000) as t(i) where i % 7 = 3"


def _children(pid: int) -> list[int]:
    """The live processes whose parent is pid (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.e2e
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc: Linux only")
def test_the_dbt_child_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    cfg_file = small_config(tmp_path)
    env = {**os.environ, "RECOMART_HOME": str(tmp_path), "RECOMART_CONFIG": str(cfg_file)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "scratch.duckdb"), SLOW_SQL],
        env=with_code_under_test(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    dbt = None
    try:
        dbt = _wait_for(lambda: next(iter(_children(parent.pid)), None), "dbt child")
        # the child is dbt itself, running the slow query (not yet finished)
        cmdline = Path(f"/proc/{dbt}/cmdline").read_bytes().split(b"\0")
        assert any(part.endswith(b"dbt") for part in cmdline) and b"show" in cmdline
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        gone = _wait_for(lambda: not _running(dbt), "end of the dbt child")
        assert gone
    finally:
        if parent.poll() is None:
            parent.kill()
        if dbt is not None and _running(dbt):
            os.kill(dbt, signal.SIGKILL)  # the orphan of a failed test: ours, by its pid
