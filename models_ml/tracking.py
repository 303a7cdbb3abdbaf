"""MLflow set-up: the SQLite tracking store and the experiment, both under paths.mlflow.

A run is started with start_run, which tags it with the process that owns it (PROCESS_TAG:
host, pid and the process's start time, so a reused pid is not mistaken for it). A process
killed outright (`kill -9`, out of memory) cannot end its run, which MLflow then shows RUNNING
for ever; the next start_run in the same experiment marks such runs FAILED, each with
ENDED_TAG saying why. Only runs owned by a process of this host that is gone are touched: a run
of a live process, of another host, or without the tag (started by other code) is left alone.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

EXPERIMENT = "recomart"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "artifacts"
PROCESS_TAG = "recomart.process"  # "<host> <pid> <start time>" of the process owning the run
ENDED_TAG = "recomart.ended"  # why a run was marked FAILED by a later run

log = logging.getLogger("train")


def tracking_uri(mlflow_dir: Path) -> str:
    """sqlite:/// URI of the tracking store inside mlflow_dir."""
    return f"sqlite:///{Path(mlflow_dir).resolve() / DB_FILE}"


def use_experiment(mlflow_dir: Path, name: str = EXPERIMENT) -> str:
    """Point MLflow at the store in mlflow_dir and return the experiment's id (created if new).

    A new experiment keeps its artifacts in mlflow_dir/artifacts, never in ./mlruns.
    """
    mlflow_dir = Path(mlflow_dir).resolve()
    mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri(mlflow_dir))
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=(mlflow_dir / ARTIFACTS_DIR).as_uri())


def start_run(experiment_id: str, **kwargs: Any) -> mlflow.ActiveRun:
    """mlflow.start_run in the experiment (kwargs passed on), after marking the experiment's
    stale runs FAILED (fail_stale_runs); the new run is tagged with this process (PROCESS_TAG)."""
    fail_stale_runs(experiment_id)
    tags = {**kwargs.pop("tags", {}), PROCESS_TAG: process_identity(os.getpid())}
    return mlflow.start_run(experiment_id=experiment_id, tags=tags, **kwargs)


def fail_stale_runs(experiment_id: str, client: MlflowClient | None = None) -> list[str]:
    """Mark FAILED every RUNNING run of the experiment whose owning process (PROCESS_TAG) ran on
    this host and is gone; returns their run ids. Each gets ENDED_TAG naming the process."""
    client = client or MlflowClient()
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    host = socket.gethostname()
    failed = []
    for run in running:
        owner = run.data.tags.get(PROCESS_TAG, "")
        parts = owner.split(" ")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue  # another host's, or not ours: cannot tell whether it still runs
        if process_identity(int(parts[1])) == owner:
            continue  # its process is alive
        why = f"its process ({owner}) ended without ending the run (killed); marked FAILED"
        client.set_tag(run.info.run_id, ENDED_TAG, why)
        client.set_terminated(run.info.run_id, status="FAILED")
        log.warning("MLflow run %s was left RUNNING: %s", run.info.run_id, why)
        failed.append(run.info.run_id)
    return failed


def process_identity(pid: int) -> str | None:
    """The identity "<host> <pid> <start time>" of a live process of this host (start time in
    clock ticks since boot, from /proc; "0" on a system without /proc); None when no such process
    runs, or it has exited and waits to be reaped (a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    started = "0"
    if Path("/proc/self/stat").exists():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return None
        # the fields after the command name (which may hold spaces and parentheses)
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            return None
        started = fields[19]  # field 22 of proc(5), starttime
    return f"{socket.gethostname()} {pid} {started}"
