"""The training run end to end on a tiny marts warehouse: real DuckDB, implicit and MLflow."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from synthetic_marts import planted_interactions, write_marts

from models_ml.evaluate import relevant_items
from models_ml.recommender import MatrixFactorizationRecommender
from models_ml.split import time_split
from models_ml.train import run_training
from recomart import config
from recomart.schema import ITEM, RATING, TIME, USER

PROJECT_TOML = Path(__file__).resolve().parent.parent / "recomart.toml"
METRICS = ("precision_at_10", "recall_at_10", "ndcg_at_10")
MODEL_FILES = {"als.npz", "ids.npz", "user_items.npz", "params.json", "training.json"}


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> config.Config:
    """A RecoMart home in tmp_path: the project's recomart.toml and a small marts warehouse."""
    toml = PROJECT_TOML.read_text().replace("factors = 64", "factors = 16")
    (tmp_path / "recomart.toml").write_text(toml)
    monkeypatch.setenv("RECOMART_HOME", str(tmp_path))
    monkeypatch.setenv("RECOMART_CONFIG", str(tmp_path / "recomart.toml"))
    monkeypatch.chdir(tmp_path)  # so a stray ./mlruns or ./mlflow.db would be seen
    config.load.cache_clear()
    cfg = config.load()
    interactions, catalog = planted_interactions(
        n_users=300, n_items=120, n_groups=4, n_interactions=8000, seed=5
    )
    write_marts(cfg.paths.warehouse, interactions, catalog)
    yield cfg
    config.load.cache_clear()


def test_run_training_logs_saves_and_reports(cfg: config.Config, tmp_path: Path) -> None:
    summary = run_training(cfg)

    # One MLflow run in the SQLite store under paths.mlflow, with metrics, params and tags.
    store = cfg.paths.mlflow / "mlflow.db"
    assert store.is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("recomart")
    assert experiment.artifact_location == (cfg.paths.mlflow / "artifacts").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [summary["run_id"]]
    run = runs[0]
    assert run.info.status == "FINISHED"
    for model in ("als", "popularity"):
        for metric in METRICS:
            assert run.data.metrics[f"{model}_{metric}"] == summary[model][metric]
    assert run.data.metrics["fit_seconds"] > 0
    assert summary["als"]["precision_at_10"] > summary["popularity"]["precision_at_10"]
    params = run.data.params
    assert params["factors"] == "16" and params["iterations"] == "15"
    assert params["alpha"] == "20.0" and params["event_weight_purchase"] == "4.0"
    assert params["holdout_days"] == "30" and params["k"] == "10"
    assert params["holdout_cutoff"] == summary["holdout_cutoff"]
    assert params["n_train_rows"] == str(summary["sizes"]["n_train_rows"])
    assert run.data.tags["warehouse"] == str(cfg.paths.warehouse)
    assert run.data.tags["training_rows"] == str(summary["sizes"]["n_train_rows"])
    sizes = summary["sizes"]
    assert sizes["n_train_rows"] + sizes["n_test_rows"] == sizes["n_interactions"] == 8000
    assert sizes["n_catalog_items"] == 120

    # The model: saved under paths.models and logged as run artifacts under "model".
    model_dir = cfg.paths.models / "als"
    assert {p.name for p in model_dir.iterdir()} == MODEL_FILES
    assert json.loads((model_dir / "training.json").read_text())["run_id"] == run.info.run_id
    logged = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "model")}
    assert logged == MODEL_FILES
    run_artifacts = cfg.paths.mlflow / "artifacts" / run.info.run_id / "artifacts" / "model"
    assert {p.name for p in run_artifacts.iterdir()} == MODEL_FILES
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()

    # The pyfunc model recommends what the saved model recommends.
    users = [int(u) for u in MatrixFactorizationRecommender.load(model_dir).user_ids[:3]]
    pyfunc = mlflow.pyfunc.load_model(summary["model_uri"])
    predicted = pyfunc.predict(pd.DataFrame({USER: users}), params={"k": 5})
    item_ids, _ = MatrixFactorizationRecommender.load(model_dir).recommend_batch(users, 5)
    assert predicted[ITEM].to_numpy().reshape(3, 5).tolist() == item_ids.tolist()

    # The report holds the same numbers.
    report = json.loads((cfg.paths.reports / "train_metrics.json").read_text())
    assert report == json.loads(json.dumps(summary))
    for model in ("als", "popularity"):
        for metric in METRICS:
            assert report[model][metric] == run.data.metrics[f"{model}_{metric}"]
    assert report["n_eval_users"] == summary["als"]["n_users"] > 0


def test_time_split_holds_out_the_last_days() -> None:
    times = pd.to_datetime(["2026-05-01", "2026-06-01", "2026-06-20", "2026-06-21", "2026-07-01"])
    frame = pd.DataFrame({USER: [1, 1, 2, 2, 3], ITEM: [1, 2, 3, 4, 5], TIME: times})
    split = time_split(frame, holdout_days=10)
    # max = 2026-07-01, cutoff = 2026-06-21: the cutoff instant belongs to test.
    assert split.cutoff == pd.Timestamp("2026-06-21")
    assert split.train[ITEM].tolist() == [1, 2, 3]
    assert split.test[ITEM].tolist() == [4, 5]


def test_relevant_items_are_new_test_items_of_train_users() -> None:
    train = pd.DataFrame({USER: [1, 1, 2], ITEM: [10, 11, 10], RATING: [5.0, 5.0, 5.0]})
    test = pd.DataFrame(
        {
            USER: [1, 1, 1, 2, 2, 3],
            ITEM: [10, 12, 12, 10, 13, 14],
            RATING: [5.0, 4.0, 4.0, 2.0, 1.0, 5.0],
        }
    )
    # user 1: 10 is known, 12 is new (twice); user 2: 10 known, 13 new; user 3 is not in train
    users, relevant = relevant_items(train, test)
    assert users.tolist() == [1, 2]
    assert [r.tolist() for r in relevant] == [[12], [13]]
    # from rating 3 on, user 2's only new item (rating 1) stops counting
    users, relevant = relevant_items(train, test, min_rating=3)
    assert users.tolist() == [1] and [r.tolist() for r in relevant] == [[12]]
    assert isinstance(relevant[0], np.ndarray)
