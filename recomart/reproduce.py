"""`recomart reproduce RUN_ID`: retrain a past run on the data it trained on and compare.

Every training run records the DVC version of the exported marts it trained on (the tag
data_features_md5, recomart_core.versioning) and its [train] section (the artifact
train_settings.json). Reproducing a run:

1. restores that version of [paths] features into a temporary folder: the current export when
   it is the same version, else through DVC (a temporary .dvc file naming the version, then
   `dvc pull`, which takes it from the DVC cache or the remote);
2. builds a temporary warehouse from those Parquet marts and retrains with the run's [train]
   section, through the same training code (a new MLflow run tagged reproduces=RUN_ID, its model
   registered as <model_name>-reproduced: the champion is not touched);
3. compares every metric of the two runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from feature_store.export import warehouse_from_features
from models_ml.tracking import tracking_uri
from models_ml.train import DATA_TAG_PREFIX, SETTINGS_ARTIFACT, run_training
from recomart_core import config
from recomart_core.versioning import dir_md5

REPRODUCED_SUFFIX = "-reproduced"
TOLERANCE = 1e-9  # the same data, settings and seeds give the same numbers


class ReproduceError(RuntimeError):
    """The run cannot be reproduced; the message says why."""


def _dvc(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "true"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=home, env=env, capture_output=True, text=True,
    )  # fmt: skip


def restore_features(cfg: config.Config, md5: str, into: Path) -> Path:
    """The folder holding version md5 of [paths] features (ReproduceError if DVC cannot)."""
    if dir_md5(cfg.paths.features) == md5:
        return cfg.paths.features
    home = cfg.paths.home
    # a .dvc file must not be git-ignored, so it goes to a folder of its own at the top
    staging = Path(tempfile.mkdtemp(prefix=".recomart-reproduce-", dir=home))
    try:
        (staging / "features.dvc").write_text(
            f"outs:\n- md5: {md5}\n  path: features\n  hash: md5\n"
        )
        pulled = _dvc(home, "pull", str((staging / "features.dvc").relative_to(home)))
        if pulled.returncode != 0 or dir_md5(staging / "features") != md5:
            raise ReproduceError(
                f"DVC could not restore the exported marts {md5} (not in the DVC cache or the "
                f"remote: `dvc push` after each run keeps them): {pulled.stderr.strip()[-500:]}"
            )
        target = into / "features"
        shutil.move(str(staging / "features"), target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def reproduce(cfg: config.Config, run_id: str) -> dict[str, Any]:
    """Retrain run_id on its recorded data version and settings; return {run_id,
    reproduced_run_id, features_md5, metrics: {name: [original, reproduced]},
    max_abs_difference, same}."""
    client = MlflowClient(tracking_uri(cfg.paths.mlflow))
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ReproduceError(f"no run {run_id} in the MLflow store {cfg.paths.mlflow}") from exc
    md5 = run.data.tags.get(f"{DATA_TAG_PREFIX}features_md5")
    if not md5:
        raise ReproduceError(
            f"run {run_id} recorded no data version (trained before the marts were exported to "
            f"{cfg.paths.features}): nothing to reproduce it from"
        )
    with tempfile.TemporaryDirectory(prefix="recomart-reproduce-") as tmp:
        tmp = Path(tmp)
        settings = json.loads(
            Path(client.download_artifacts(run_id, SETTINGS_ARTIFACT, str(tmp))).read_text()
        )
        settings["model_name"] = settings["model_name"] + REPRODUCED_SUFFIX
        features = restore_features(cfg, md5, tmp)
        warehouse = tmp / "warehouse.duckdb"
        warehouse_from_features(features, warehouse)
        paths = replace(
            cfg.paths, warehouse=warehouse, features=features, models=tmp / "models",
            reports=tmp / "reports", feature_store=tmp / "feature_store.duckdb",
        )  # fmt: skip
        again = config.with_settings(replace(cfg, paths=paths), train=settings)
        summary = run_training(again)
    client.set_tag(summary["run_id"], "reproduces", run_id)
    new = client.get_run(summary["run_id"]).data.metrics
    metrics = {
        name: [value, new[name]]
        for name, value in sorted(run.data.metrics.items())
        if name in new and not _is_timing(name)
    }
    worst = max((abs(a - b) for a, b in metrics.values()), default=0.0)
    return {
        "run_id": run_id,
        "reproduced_run_id": summary["run_id"],
        "features_md5": md5,
        "metrics": metrics,
        "max_abs_difference": worst,
        "same": worst <= TOLERANCE,
    }


def print_reproduction(result: dict[str, Any]) -> None:
    """The comparison table; ReproduceError when a metric differs."""
    print(f"run {result['run_id']} reproduced as {result['reproduced_run_id']} on the marts "
          f"{result['features_md5']}")  # fmt: skip
    print(f"  {'metric':<40}{'original':>14}{'reproduced':>14}")
    for name, (original, again) in result["metrics"].items():
        if name.startswith(("model_", "popularity_")) and name.endswith("_at_10"):
            print(f"  {name:<40}{original:>14.6f}{again:>14.6f}")
    print(f"  {len(result['metrics'])} metrics compared, largest difference "
          f"{result['max_abs_difference']:.3g}")  # fmt: skip
    if not result["same"]:
        raise ReproduceError(
            f"the reproduced metrics differ by up to {result['max_abs_difference']:.3g}"
        )


def _is_timing(name: str) -> bool:
    return name.endswith("_seconds") or name in {"untimed", "total"}
