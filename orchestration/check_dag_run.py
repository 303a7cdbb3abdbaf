"""`make airflow-test`'s verdict on one run of the DAG, read from Airflow's database.

    check_dag_run.py DAG_ID DATE success      every task succeeded and a model was registered
    check_dag_run.py DAG_ID DATE gate-failed  the gate failed on its first try, nothing after it
                                              ran, the champion model did not change

Run with the Airflow environment's Python after `airflow dags test`, with the same AIRFLOW_HOME and
RECOMART_HOME. Prints the run's task states; exits 1 saying what is wrong.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from airflow.models import DagRun, TaskInstance
from airflow.utils.session import create_session
from sqlalchemy import select

BEFORE_GATE = ("ingest_interactions", "ingest_catalog", "transform")
GATE = "quality_gate"
AFTER_GATE = ("train_register_promote", "summary")
EXPECTED = {
    "success": dict.fromkeys((*BEFORE_GATE, GATE, *AFTER_GATE), ("success", None)),
    "gate-failed": {
        **dict.fromkeys(BEFORE_GATE, ("success", None)),
        GATE: ("failed", 1),  # one try: a failed gate is a verdict, not retried
        **dict.fromkeys(AFTER_GATE, ("upstream_failed", None)),
    },
}


def task_states(dag_id: str, logical_date: datetime) -> tuple[str, dict[str, tuple[str, int]]]:
    """The run's state and, per task, (state, try number)."""
    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date)
        ).one()
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id
            )
        )
        return str(run.state), {ti.task_id: (str(ti.state), ti.try_number) for ti in tis}


def trained_model(home: Path) -> dict | None:
    path = home / "reports" / "train_metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(dag_id: str, date: str, expect: str) -> int:
    logical_date = datetime.fromisoformat(date).replace(tzinfo=UTC)
    run_state, states = task_states(dag_id, logical_date)
    print(f"DAG run of {date}: {run_state} (expected: {expect})")
    for task_id, (state, tries) in states.items():
        print(f"  {task_id:<24}{state:<16}try {tries}")
    problems = []
    if run_state != ("success" if expect == "success" else "failed"):
        problems.append(f"the run ended {run_state}")
    for task_id, (state, tries) in EXPECTED[expect].items():
        got_state, got_tries = states.get(task_id, ("missing", 0))
        if got_state != state or (tries is not None and got_tries != tries):
            problems.append(f"{task_id}: {got_state} (try {got_tries}), expected {state}")
    model = trained_model(Path(os.environ["RECOMART_HOME"]))
    if model is None or not model.get("model_version"):
        problems.append("no model was registered")
    else:
        print(
            f"model {model['model_name']} version {model['model_version']}, promoted:"
            f" {model['promotion']['promote']} ({model['promotion']['reason']}),"
            f" {model['recommendations_rows']} batch recommendations"
        )
        if expect == "gate-failed" and str(model["model_version"]) != "1":
            problems.append(f"a model was trained after the failed gate: {model['model_version']}")
    for problem in problems:
        print("FAILED:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
