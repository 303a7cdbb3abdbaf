"""MLflow set-up: the SQLite tracking store and the experiment, both under paths.mlflow."""

from __future__ import annotations

from pathlib import Path

import mlflow

EXPERIMENT = "recomart"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "artifacts"


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
