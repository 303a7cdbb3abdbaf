"""MLflow "models from code" entry point: MLflow runs this file to get the pyfunc model.

Logged by models_ml.pyfunc.log_pyfunc; importing it anywhere else has no use.
"""

import mlflow

from models_ml.pyfunc import RecommenderModel

mlflow.models.set_model(RecommenderModel())
