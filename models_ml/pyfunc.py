"""The recommender as an MLflow pyfunc model: input shop user ids (string), output ranked
recommendations with shop item ids (string).

The saved model directory travels as the artifact "recommender"; models_ml and recomart travel
as code, so `mlflow.pyfunc.load_model(uri)` works wherever the pip requirements are installed.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from models_ml.recommender import MatrixFactorizationRecommender
from recomart.core.schema import ITEM, USER

CODE_ROOT = Path(__file__).resolve().parent.parent  # holds the models_ml and recomart packages
ENTRY_POINT = Path(__file__).resolve().parent / "pyfunc_entry.py"
ARTIFACT = "recommender"
RANK = "rank"
SCORE = "score"
REQUIREMENTS = ("implicit", "numpy", "scipy", "pandas", "threadpoolctl")


def signature(k: int) -> ModelSignature:
    """Input: user_id (string). Output: user_id (string), rank, item_id (string), score.
    Params: k, exclude_known."""
    return ModelSignature(
        inputs=Schema([ColSpec("string", USER)]),
        outputs=Schema(
            [
                ColSpec("string", USER),
                ColSpec("long", RANK),
                ColSpec("string", ITEM),
                ColSpec("float", SCORE),
            ]
        ),
        params=ParamSchema(
            [ParamSpec("k", "long", k), ParamSpec("exclude_known", "boolean", True)]
        ),
    )


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of MatrixFactorizationRecommender.recommend_ids (shop ids in and out)."""

    def load_context(self, context: Any) -> None:
        self.recommender = MatrixFactorizationRecommender.load(context.artifacts[ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any]
    ) -> pd.DataFrame:
        """DataFrame with user_id -> DataFrame (user_id, rank, item_id, score), rank from 1,
        ids as the shop's strings; unknown users get the cold-start list.

        params k and exclude_known: MLflow fills in the signature's defaults.
        """
        k = int(params["k"])
        users = pd.DataFrame(model_input)[USER].to_numpy(dtype=object)
        item_ids, scores = self.recommender.recommend_ids(
            users, k, exclude_known=bool(params["exclude_known"])
        )
        kept = pd.notna(item_ids.ravel())
        return pd.DataFrame(
            {
                USER: np.repeat(users, k)[kept],
                RANK: np.tile(np.arange(1, k + 1), len(users))[kept],
                ITEM: item_ids.ravel()[kept],
                SCORE: scores.ravel()[kept],
            }
        )


def log_pyfunc(
    model_dir: Path,
    k: int,
    example_user_ids: list[str],
    name: str = "recommender",
    registered_model_name: str | None = None,
) -> tuple[str, str | None]:
    """Log model_dir as a pyfunc model of the active run (and register it under
    registered_model_name); return its model URI and registered version (or None).

    k is the default list length; MLflow runs the model on example_user_ids (shop ids) while
    logging.
    """
    code = [str(CODE_ROOT / package) for package in ("models_ml", "recomart")]
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=str(ENTRY_POINT),
        artifacts={ARTIFACT: str(model_dir)},
        code_paths=code,
        signature=signature(k),
        input_example=pd.DataFrame({USER: [str(u) for u in example_user_ids]}),
        pip_requirements=[f"{package}=={version(package)}" for package in REQUIREMENTS],
        registered_model_name=registered_model_name,
    )
    registered = info.registered_model_version
    return info.model_uri, None if registered is None else str(registered)
