"""Training on engine "spark": MLlib ALS from the marts dbt built on Spark, through the same
evaluation, MLflow logging, registry, champion gate and model package; batch recommendations in
Spark's warehouse.

One module fixture builds the marts on both engines from one small generated input (the
pipeline's ingest, then its DuckDB transform; the lake export, then dbt on Spark). The feature
store reads Spark's Parquet folders and gives the training set DuckDB's marts give. The training
run's user factors are checked against MLlib's own normal equations (confidence 1 + alpha*|r|,
regularisation regParam * n_u): factors from implicit's fit do not solve them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import config_for, run_stage, small_config
from mlflow.tracking import MlflowClient
from scipy.sparse import csr_matrix
from test_spark_transform import pytestmark as spark_marks

from dbt_project import build
from dlt_pipelines.lake_pipeline import replicate_to_lake
from feature_store import FeatureStore
from models_ml import batch, mllib, package
from models_ml.families.als import fit_als
from models_ml.train import recommendations_spark_path, run_training
from recomart_core import config, engine
from recomart_core import schema as s
from recomart_core.warehouse import candidate_path
from serving.loader import RegistrySource

pytestmark = spark_marks  # e2e, spark, skipped without pyspark, dbt-spark or Java

SIZES = {"n_users": 300, "n_items": 120, "n_interactions": 5000}  # a few thousand rows
FACTORS = 8  # [train.als] factors here: not the project's 16, so the mapping to rank shows
AS_OF = "2026-08-15T00:00:00"  # inside the generated period (starts 2026-05-01, 184 days)


@dataclass(frozen=True)
class Homes:
    """One home, the marts built on both engines: cfg (engine duckdb, reading the DuckDB
    candidate warehouse), spark (engine spark)."""

    cfg: config.Config
    spark: config.Config


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Homes:
    home = tmp_path_factory.mktemp("spark_train_home")
    cfg_file = small_config(home, **SIZES)
    cfg = config_for(home, cfg_file)
    cfg = config.with_train(cfg, als={"factors": FACTORS})
    run_stage(home, cfg_file, "generate")
    run_stage(home, cfg_file, "ingest")
    run_stage(home, cfg_file, "transform")  # DuckDB's marts, in the candidate warehouse
    replicate_to_lake(cfg)  # the lake, as the ingest on engine spark writes it
    build.build(cfg, target=build.SPARK)  # one dbt build on Spark for the module
    return Homes(cfg, config.with_settings(cfg, engine=engine.SPARK))


@pytest.fixture(scope="module")
def trained(homes: Homes) -> dict:
    """run_training on engine spark, once for the module."""
    return run_training(homes.spark)


def test_the_feature_store_reads_the_spark_marts_as_duckdbs(homes: Homes) -> None:
    on_duckdb = FeatureStore(homes.cfg, warehouse=candidate_path(homes.cfg.paths.warehouse))
    on_spark = FeatureStore(homes.spark)
    assert on_spark.spark_tables is not None and on_duckdb.spark_tables is None
    for as_of in (None, AS_OF):
        want, got = on_duckdb.training_set(as_of), on_spark.training_set(as_of)
        assert len(got.interactions) > 1000
        pd.testing.assert_frame_equal(got.interactions, want.interactions)
        pd.testing.assert_frame_equal(got.items, want.items)
        for name in ("user_names", "user_codes", "item_names", "item_codes"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    early = on_spark.training_set(AS_OF).interactions
    assert early[s.TIME].max() <= pd.Timestamp(AS_OF)
    assert len(early) < len(on_spark.training_set().interactions)
    pd.testing.assert_frame_equal(on_spark.item_attributes(), on_duckdb.item_attributes())


def test_a_missing_spark_mart_is_a_clear_error(homes: Homes, tmp_path: Path) -> None:
    paths = replace(homes.spark.paths, spark=tmp_path / "no_spark")
    elsewhere = replace(homes.spark, paths=paths)
    with pytest.raises(FileNotFoundError, match=r"Spark marts not found: .*interactions"):
        FeatureStore(elsewhere).training_set()


def test_spark_training_promotes_mllib_als_over_popularity(trained: dict, homes: Homes) -> None:
    assert trained["engine"] == engine.SPARK and trained["family"] == "als"
    ndcg = "ndcg_at_10"
    assert trained["model"][ndcg] > trained["popularity"][ndcg] + 0.01
    assert trained["model"][ndcg] > trained["recent_popularity"][ndcg]
    assert trained["promotion"]["promote"], trained["promotion"]
    run = MlflowClient(trained["tracking_uri"]).get_run(trained["run_id"])
    tags, params = run.data.tags, run.data.params
    assert tags["engine"] == "spark" and tags["fit_backend"] == mllib.BACKEND
    assert tags["mllib_uid"].startswith("ALS_")  # the fitted MLlib estimator's own id
    assert tags["spark_version"].startswith("4.")
    assert params["mllib_rank"] == str(FACTORS) and params["mllib_implicitPrefs"] == "True"
    assert params["mllib_maxIter"] == str(homes.cfg.settings.train.families["als"]["iterations"])
    assert float(params["mllib_alpha"]) == homes.cfg.settings.train.alpha
    assert run.data.metrics["spark_session_seconds"] > 0
    # the DuckDB warehouse got no recommendations: they went to Spark's warehouse
    with duckdb.connect(str(homes.cfg.paths.warehouse), read_only=True) as con:
        tables = con.execute("select schema_name || '.' || table_name from duckdb_tables()")
        assert batch.TABLE not in {row[0] for row in tables.fetchall()}


def mllib_normal_equation_error(
    user_items: csr_matrix, users: np.ndarray, items: np.ndarray, lam: float, alpha: float,
    scaled: bool,
) -> float:  # fmt: skip
    """The largest relative error of the users' factors as the least-squares answer to the items'
    under MLlib's implicit ALS (module doc of models_ml.mllib): confidence max(|C|, 1) of a cell C
    of the matrix, preference C > 0, and regularisation lam * n_u (scaled: MLlib's, n_u the
    user's preferred cells) or lam (implicit's)."""
    V = items.astype(np.float64)
    gram = V.T @ V
    worst = 0.0
    for u in range(user_items.shape[0]):
        row = user_items[u]
        cols, values = row.indices, row.data.astype(np.float64)
        keep = (values > 0) | (np.abs(values) > 1)
        cols, values = cols[keep], values[keep]
        confidence = np.maximum(np.abs(values), 1 + alpha * mllib.MIN_RATING)
        positive = values > 0
        a = gram + (V[cols].T * (confidence - 1)) @ V[cols]
        a += np.eye(len(gram)) * lam * (positive.sum() if scaled else 1)
        b = V[cols[positive]].T @ confidence[positive]
        want = np.linalg.solve(a, b)
        worst = max(worst, np.linalg.norm(users[u] - want) / max(np.linalg.norm(want), 1e-9))
    return worst


def test_the_factors_are_mllibs_in_vocabulary_order(trained: dict, homes: Homes) -> None:
    model = package.load_local(homes.spark.paths.models)  # the champion: this run's model
    assert package.read_run(trained["model_dir"])["run_id"] == trained["run_id"]
    marts = FeatureStore(homes.spark).training_set()
    users, items = model._model.user_factors, model._model.item_factors
    assert users.shape == (len(marts.user_codes), FACTORS)  # refit on all data: every user
    assert items.shape == (len(marts.item_codes), FACTORS)
    settings = homes.cfg.settings.train
    lam = settings.families["als"]["regularization"]
    user_items = model.user_items
    warm = np.diff(user_items.tocsc().indptr) > 0
    fitted = np.where(warm[:, None], items, 0)  # cold items' factors are imputed after the fit
    reg_param = mllib.reg_param(user_items, lam)  # lam over the mean count of cells
    assert 0 < reg_param < lam
    mllib_error = mllib_normal_equation_error(
        user_items, users, fitted, reg_param, settings.alpha, scaled=True
    )
    implicit_error = mllib_normal_equation_error(
        user_items, users, fitted, lam, settings.alpha, scaled=False
    )
    assert mllib_error < 1e-4, mllib_error  # float32 factors (measured: 4e-8)
    assert implicit_error > 10 * mllib_error, (implicit_error, mllib_error)
    # implicit's fit of the same matrix is another answer
    implicit = fit_als(user_items, model.settings, settings.seed)
    assert mllib_normal_equation_error(
        user_items, implicit.user_factors, np.where(warm[:, None], implicit.item_factors, 0),
        reg_param, settings.alpha, scaled=True,
    ) > 10 * mllib_error  # fmt: skip


def test_the_api_loads_the_package_and_serves_the_batch_table_lists(
    trained: dict, homes: Homes
) -> None:
    folder = recommendations_spark_path(homes.spark)
    assert folder == engine.spark_table_path(homes.spark, "recommendations", "user_recommendations")
    assert trained["recommendations_path"] == str(folder)
    k = trained["k"]
    with engine.spark_session(homes.spark, "test-read") as spark:
        table = spark.read.parquet(str(folder)).toPandas()
    assert len(table) == trained["recommendations_rows"] > 0
    assert not table.duplicated(["user_id", "rank"]).any()
    assert set(table["model_version"]) == {str(trained["model_version"])}
    assert set(table["run_id"]) == {trained["run_id"]}
    source = RegistrySource(homes.spark)
    try:
        served = source.load(source.champion_version(), max_k=k, precompute_max_users=0)
    finally:
        source.close()
    assert served.n_users == table["user_id"].nunique()
    # one row per (user, rank) the served model lists, the same items in the same order
    for user in table["user_id"].drop_duplicates().sample(40, random_state=1):
        body = served.recommend(user, k)
        listed = [entry["item_id"] for entry in body["items"]]
        rows = table[table["user_id"] == user].sort_values("rank")
        assert rows["rank"].tolist() == list(range(1, len(listed) + 1))
        assert rows["item_id"].tolist() == listed
        assert rows["title"].notna().all()


def test_another_family_fits_on_the_driver_from_the_spark_marts(
    trained: dict, homes: Homes
) -> None:
    ease = run_training(config.with_train(homes.spark, family="ease"))
    assert ease["engine"] == engine.SPARK and ease["family"] == "ease"
    for key in ("n_interactions", "n_train_rows", "n_test_rows"):  # the same marts, holdout
        assert ease["sizes"][key] == trained["sizes"][key], key
    run = MlflowClient(ease["tracking_uri"]).get_run(ease["run_id"])
    assert run.data.tags["fit_backend"] == mllib.DRIVER
    assert not any(key.startswith("mllib_") for key in run.data.params)
