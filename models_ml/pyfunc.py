"""The recommender as an MLflow pyfunc model: input user ids, output ranked recommendations.

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

from models_ml.ranking import PAD_ITEM
from models_ml.recommender import MatrixFactorizationRecommender
from recomart.schema import ITEM, USER

CODE_ROOT = Path(__file__).resolve().parent.parent  # holds the models_ml and recomart packages
ENTRY_POINT = Path(__file__).resolve().parent / "pyfunc_entry.py"
ARTIFACT = "recommender"
RANK = "rank"
SCORE = "score"
REQUIREMENTS = ("implicit", "numpy", "scipy", "pandas", "threadpoolctl")


def signature(k: int) -> ModelSignature:
    """Input: user_id column. Output: user_id, rank, item_id, score. Params: k, exclude_known."""
    return ModelSignature(
        inputs=Schema([ColSpec("long", USER)]),
        outputs=Schema(
            [
                ColSpec("long", USER),
                ColSpec("long", RANK),
                ColSpec("long", ITEM),
                ColSpec("float", SCORE),
            ]
        ),
        params=ParamSchema(
            [ParamSpec("k", "long", k), ParamSpec("exclude_known", "boolean", True)]
        ),
    )


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of MatrixFactorizationRecommender.recommend_batch."""

    def load_context(self, context: Any) -> None:
        self.recommender = MatrixFactorizationRecommender.load(context.artifacts[ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any]
    ) -> pd.DataFrame:
        """DataFrame with user_id -> DataFrame (user_id, rank, item_id, score), rank from 1.

        params k and exclude_known: MLflow fills in the signature's defaults.
        """
        k = int(params["k"])
        users = np.asarray(pd.DataFrame(model_input)[USER], dtype=np.int64)
        item_ids, scores = self.recommender.recommend_batch(
            users, k, exclude_known=bool(params["exclude_known"])
        )
        out = pd.DataFrame(
            {
                USER: np.repeat(users, k),
                RANK: np.tile(np.arange(1, k + 1), len(users)),
                ITEM: item_ids.ravel(),
                SCORE: scores.ravel(),
            }
        )
        return out[out[ITEM] != PAD_ITEM].reset_index(drop=True)


def log_pyfunc(
    model_dir: Path,
    k: int,
    example_user_ids: list[int],
    name: str = "recommender",
    registered_model_name: str | None = None,
) -> tuple[str, str | None]:
    """Log model_dir as a pyfunc model of the active run (and register it under
    registered_model_name); return its model URI and registered version (or None).

    k is the default list length; MLflow runs the model on example_user_ids while logging.
    """
    code = [str(CODE_ROOT / package) for package in ("models_ml", "recomart")]
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=str(ENTRY_POINT),
        artifacts={ARTIFACT: str(model_dir)},
        code_paths=code,
        signature=signature(k),
        input_example=pd.DataFrame({USER: np.asarray(example_user_ids, dtype=np.int64)}),
        pip_requirements=[f"{package}=={version(package)}" for package in REQUIREMENTS],
        registered_model_name=registered_model_name,
    )
    registered = info.registered_model_version
    return info.model_uri, None if registered is None else str(registered)
