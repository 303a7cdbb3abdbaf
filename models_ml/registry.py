"""The registry gate: the `champion` alias moves only to a model that beats the baselines and
the current champion on the promotion metric (NDCG@K) of the same holdout.

How the champion is scored on the candidate's holdout:
- same holdout (the champion's run logged the same holdout fingerprint, i.e. the same train
  and test rows): its logged metric is used as is;
- otherwise (new data since): the champion's recipe (the recommender parameters saved with its
  model) is refitted on the current training rows and scored on the current test rows, because
  the champion model itself may have been refitted on rows that are now in the test period.
A failed gate leaves the alias where it was; the run records why (tags and decision.json).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION = "champion"
HOLDOUT_TAG = "holdout_sha256"


@dataclass
class Decision:
    promote: bool
    reason: str
    metric: str
    candidate: float
    baselines: dict[str, float]
    champion_version: str | None = None
    champion_value: float | None = None
    champion_scored_by: str | None = None  # "logged metric, same holdout" / "refitted recipe"

    def as_dict(self) -> dict:
        return asdict(self)


def decide(
    metric: str,
    candidate: float,
    baselines: dict[str, float],
    champion_value: float | None,
    min_improvement: float = 0.0,
) -> tuple[bool, str]:
    """Promote iff candidate > every baseline and > champion_value + min_improvement.

    Ties do not promote: an equally good model leaves the current champion in place.
    """
    for name, value in baselines.items():
        if not candidate > value:
            return False, f"{metric} {candidate:.4f} does not beat baseline {name} ({value:.4f})"
    if champion_value is None:
        return True, f"first champion: {metric} {candidate:.4f} beats every baseline"
    if not candidate > champion_value + min_improvement:
        return False, (
            f"{metric} {candidate:.4f} does not beat the champion's {champion_value:.4f}"
            f" by more than {min_improvement}"
        )
    return True, f"{metric} {candidate:.4f} beats the champion's {champion_value:.4f}"


def current_champion(client: MlflowClient, model_name: str):
    """The model version holding the champion alias, or None."""
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def champion_score(
    client: MlflowClient,
    model_name: str,
    metric_key: str,
    holdout_hash: str,
    refit_and_score: Callable[[dict], float],
    params_artifact: str,
) -> tuple[str | None, float | None, str | None]:
    """(version, value of metric_key on this holdout, how it was scored) of the champion."""
    version = current_champion(client, model_name)
    if version is None:
        return None, None, None
    run = client.get_run(version.run_id)
    if run.data.tags.get(HOLDOUT_TAG) == holdout_hash and metric_key in run.data.metrics:
        return str(version.version), run.data.metrics[metric_key], "logged metric, same holdout"
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path=params_artifact, dst_path=tmp
        )
        params = json.loads(Path(local).read_text())["params"]
    return str(version.version), refit_and_score(params), "refitted recipe on this holdout"


def promote(client: MlflowClient, model_name: str, version: str) -> None:
    client.set_registered_model_alias(model_name, CHAMPION, version)
