"""Find the registry's champion and turn it into a ServingModel.

The model comes from the MLflow registry (tracking store sqlite in paths.mlflow, as training
writes it): `models:/<name>/<version>` of the version holding the `champion` alias, downloaded to
a local cache, then read whole into memory (models_ml.package finds the model package inside the
pyfunc model and reads it). Item metadata (title, category, price) comes from the package's own
items file, which training wrote from the feature store: serving never opens the warehouse. A
package without that file is served with the model's categories only. Nothing here runs on the
request path.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from models_ml import package
from models_ml.registry import CHAMPION
from models_ml.tracking import DB_FILE, tracking_uri
from recomart_core import config
from serving.snapshot import ModelInfo, ServingModel

log = logging.getLogger("recomart.serving")

ITEMS_FROM_PACKAGE = "model artifact"
ITEMS_MISSING = "model categories only (no titles or prices)"
NO_MODEL_HINT = "run `make train` (or `recomart train`) to train and register a champion"


class NoChampion(LookupError):
    """The registry has no model version with the champion alias (yet)."""


class RegistrySource:
    """The champion of one registered model in the project's MLflow store."""

    def __init__(self, cfg: config.Config) -> None:
        self.mlflow_dir = Path(cfg.paths.mlflow)
        self.model_name = cfg.settings.train.model_name
        self._cache = Path(tempfile.mkdtemp(prefix="recomart-serving-"))
        self._client = None

    def client(self):
        """An MlflowClient on the store, or NoChampion when the store does not exist yet
        (the service never creates a tracking store)."""
        if self._client is None:
            if not (self.mlflow_dir / DB_FILE).is_file():
                raise NoChampion(f"no MLflow store at {self.mlflow_dir}: {NO_MODEL_HINT}")
            import mlflow
            from mlflow.tracking import MlflowClient

            # the service talks to this one store: any MLflow default resolves to it too
            mlflow.set_tracking_uri(tracking_uri(self.mlflow_dir))
            self._client = MlflowClient(tracking_uri(self.mlflow_dir))
        return self._client

    def champion_version(self) -> str:
        """The version number holding the champion alias; NoChampion if none."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(self.model_name, CHAMPION).version)
        except MlflowException as exc:
            raise NoChampion(
                f"no `{CHAMPION}` version of `{self.model_name}` in the registry: {NO_MODEL_HINT}"
            ) from exc

    def load(self, version: str, max_k: int, precompute_max_users: int) -> ServingModel:
        """Download models:/<name>/<version>, read it into memory, build the ServingModel."""
        import mlflow

        client = self.client()
        mv = client.get_model_version(self.model_name, version)
        target = self._cache / f"v{version}"
        shutil.rmtree(target, ignore_errors=True)
        # the version's own artifact location (a models:/ URI would resolve through the
        # default registry, not this store)
        source = client.get_model_version_download_uri(self.model_name, version)
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(target), tracking_uri=client.tracking_uri
            )
        )
        model_dir = package.pyfunc_package_dir(local)
        model = package.load_recommender(model_dir)
        items = package.read_items(model_dir)
        if items is None:
            log.warning("model version %s has no item attributes: %s", version, ITEMS_MISSING)
        run = client.get_run(mv.run_id) if mv.run_id else None
        info = ModelInfo(
            name=self.model_name,
            version=str(version),
            alias=CHAMPION,
            run_id=mv.run_id,
            trained_at=_iso_ms(run.info.start_time) if run else None,
            data_cutoff=run.data.tags.get("snapshot_time") if run else None,
            holdout_cutoff=package.read_run(model_dir).get("holdout_cutoff")
            or (run.data.params.get("holdout_cutoff") if run else None),
            metrics={
                key: float(value)
                for key, value in sorted((run.data.metrics if run else {}).items())
                if not key.endswith("_seconds")
            },
            source=f"models:/{self.model_name}/{version}",
            loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
            item_metadata=ITEMS_MISSING if items is None else ITEMS_FROM_PACKAGE,
        )
        serving = ServingModel(model, items, info, max_k, precompute_max_users)
        shutil.rmtree(target, ignore_errors=True)  # everything is in memory now
        return serving

    def close(self) -> None:
        shutil.rmtree(self._cache, ignore_errors=True)


def _iso_ms(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")
