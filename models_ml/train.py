"""One training run: read the training set through the feature store (models_ml.data), hold out
a test set ([train.evaluation], models_ml.split), fit the model ([train] family, models_ml.families:
ALS by default) and three baselines (popularity, recent popularity, repeat), evaluate
all on the same users of the holdout, log everything to MLflow (per-user NDCG included), gate the
registry (models_ml.registry: a paired bootstrap over users), refit for serving, write batch
recommendations to the warehouse, save the model package (models_ml.package) and a report.

One repeat policy ([train] repeatable_events, models_ml.matrix.excluded_pairs) throughout: what
the model and the baselines may recommend again, which test items count as relevant, what the
champion's refit is scored on; the report, the run's params and tags say which (repeat_policy).

Settings are the typed [train] section (cfg.settings.train, recomart_core.settings.Train).

Engine "spark" (cfg.settings.engine): the training set is read from the marts dbt built on Spark
(the feature store over their Parquet folders), one Spark session (recomart_core.engine) is open
for the run, and the als family's factors are fitted by Spark MLlib in it (models_ml.mllib: the
same confidence matrix; every ALS fit of the run, the champion's refit included); the other
families fit on the driver as on DuckDB (logged, tag fit_backend=driver): their fits are numpy
and implicit code with no MLlib counterpart. Evaluation, baselines, gate, MLflow, registry and
the package are the same code; the run is tagged engine=spark and fit_backend=mllib with MLlib's
params (mllib_*); batch recommendations go to Spark's warehouse as Parquet
(models_ml.batch.write_recommendations_spark, recommendations_spark_path), not to the DuckDB file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from feature_store import FeatureStore
from models_ml import batch, families, mllib, package, plots, registry
from models_ml.baselines import (
    PopularityRecommender,
    RecentPopularityRecommender,
    RepeatRecommender,
)
from models_ml.data import LOAD_ID, SOURCE_TABLES, Marts, read_training_data
from models_ml.evaluate import Scores, evaluate_cold, evaluate_many, rating_metrics
from models_ml.families.als import ALS
from models_ml.matrix import matrix_hash
from models_ml.pyfunc import log_pyfunc
from models_ml.recommender import Recommender
from models_ml.split import EvaluationSettings, Split, holdout
from models_ml.tracking import start_run, tracking_uri, use_experiment
from recomart_core import config, engine
from recomart_core.rulesets import NO_RULE_SET, RuleSet, load_rule_set
from recomart_core.schema import EVENT, EVENT_TYPES, ITEM, RATING, TIME, USER
from recomart_core.settings import NESTED, Train
from recomart_core.timing import Timings
from recomart_core.versioning import data_version

log = logging.getLogger("training")
REPORT_FILE = "train_metrics.json"  # <paths.reports>/train_metrics.json
SETTINGS_ARTIFACT = "train_settings.json"  # the run's [train] section
DATA_TAG_PREFIX = "data_"  # data_features_md5, data_git_commit, data_dvc_lock_sha256
PYFUNC_NAME = "recommender"  # name of the logged pyfunc model
CHECKPOINT_FOLDER = "checkpoints"  # engine spark: <paths.spark>/checkpoints, MLlib ALS's
MODEL = "model"  # the trained family's key beside the baselines
# the gate compares the model with each; "repeat" only when [train] repeatable_events lets items
# come back (with nothing repeatable it would be popularity again, at the cost of a third pass)
BASELINES = ("popularity", "recent_popularity", "repeat")


def baselines_of(train: Train) -> tuple[str, ...]:
    """The BASELINES a run with this [train] section fits, evaluates and gates against."""
    return BASELINES if train.repeatable_events else BASELINES[:2]


PROMOTION_METRIC = "ndcg"
CHAMPION_KEY = "champion"


@dataclass
class Outcome:
    """A model fitted on the train split and what its evaluation found."""

    model: Recommender
    split: Split
    cutoff: str | None  # test = event_at >= cutoff; None for leave-last-n (no single cutoff)
    metrics: dict[str, dict[str, float]]  # "model" and each baseline (baselines_of)
    cold_users: dict[str, dict[str, float] | None]
    rating: dict[str, Any]
    curves: dict[str, dict[str, list[float]]]
    sizes: dict[str, int]
    timings: dict[str, float]
    lineage: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Scores] = field(default_factory=dict)  # per-user values, same users
    settings: EvaluationSettings = field(default_factory=EvaluationSettings)
    policy: dict[str, Any] = field(default_factory=dict)  # repeat_policy(train)

    def per_user(self, metric: str) -> dict[str, np.ndarray]:
        """{recommender: per-user values of metric}, aligned with self.eval_user_ids."""
        return {name: scores.per_user[metric] for name, scores in self.scores.items()}

    @property
    def eval_shop_ids(self) -> np.ndarray:
        """eval_user_ids as the shop's ids (what the per-user artifact is keyed by)."""
        return self.model.users.decode(self.eval_user_ids).astype(str)

    @property
    def eval_user_ids(self) -> np.ndarray:
        return self.scores[MODEL].user_ids


def hyperparameters(train: Train, points: dict[str, Any]) -> dict[str, Any]:
    """The [train] section flattened for MLflow: event_weights.view -> event_weight_view,
    cold_start.few_interactions -> cold_start_few_interactions, evaluation.holdout ->
    evaluation_holdout, [train.ease] l2 -> ease_l2 (every family's own settings, as
    <family>_<key> from points, families.point_values: every setting, defaults included); the
    tune section left out."""
    values = train.model_dump()
    flat = {key: value for key, value in values.items() if key not in NESTED}
    flat.update({key.replace(".", "_"): v for key, v in points.items() if "." in key})
    flat.update({f"event_weight_{event}": w for event, w in train.event_weights.items()})
    flat.update({f"cold_start_{key}": v for key, v in values["cold_start"].items()})
    flat.update({f"evaluation_{key}": v for key, v in train.evaluation.as_dict().items()})
    return flat


def repeat_policy(train: Train) -> dict[str, Any]:
    """The repeat policy as reports show it: repeatable_events, excluded (in words: what is never
    recommended again, and what is then never relevant in evaluation), repeat_weight,
    repeat_half_life_days."""
    repeatable = list(train.repeatable_events)
    others = [event for event in EVENT_TYPES if event not in repeatable]
    if not repeatable:
        excluded = "every item the user had (no event type is repeatable)"
    elif not others:
        excluded = "returned items only (every event type is repeatable)"
    else:
        excluded = (
            f"items the user had with {' or '.join(others)}, or returned;"
            f" items had only with {', '.join(repeatable)} may come back"
        )
    return {
        "repeatable_events": repeatable,
        "excluded": excluded,
        "repeat_weight": train.repeat_weight,
        "repeat_half_life_days": train.repeat_half_life_days,
    }


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of the rows' (user, item, event, rating, time) values, independent of row order."""
    columns = [c for c in (USER, ITEM, EVENT, RATING, TIME) if c in frame]
    rows = frame[columns].sort_values(columns).reset_index(drop=True)
    return hashlib.sha256(
        pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()
    ).hexdigest()


def fit_and_evaluate(
    marts: Marts, split: Split, train: Train, spec: families.Spec, timings: Timings
) -> Outcome:
    """Fit the model (spec) and baselines_of(train) on the split's train set, evaluate all on
    the same warm users of its test set (one top-N list each) and the cold users apart, every
    one under the repeat policy of [train] repeatable_events (exclusions and relevance alike).
    timings: where the phases' seconds go (Outcome.timings)."""
    k = train.k
    settings = train.evaluation
    min_rating = train.min_relevant_rating
    with timings.phase("fit"):
        model = spec.new().fit(split.train, marts.catalog, marts.users, marts.items)
    repeatable = train.repeatable_events
    with timings.phase("fit_baselines"):
        recommenders = {
            MODEL: model,
            "popularity": PopularityRecommender(repeatable=repeatable).fit(split.train),
            "recent_popularity": RecentPopularityRecommender(
                train.cold_start.recent_half_life_days, repeatable
            ).fit(split.train),
        }
        if "repeat" in baselines_of(train):
            recommenders["repeat"] = RepeatRecommender(
                train.repeat_half_life_days, repeatable, train.event_weights
            ).fit(split.train)

    n_catalog = int(marts.catalog[ITEM].nunique())
    max_k = train.plot_max_k
    with timings.phase("evaluate"):
        scores = evaluate_many(
            recommenders, split.train, split.test, k, min_rating, n_catalog, max_k=max_k,
            max_users=settings.max_eval_users, seed=train.seed, repeatable=repeatable,
        )  # fmt: skip
    metrics = {name: s.metrics for name, s in scores.items()}
    curves = {name: s.curve for name, s in scores.items()}
    with timings.phase("evaluate_cold"):
        cold = {
            name: evaluate_cold(rec, split.train, split.test, k, min_rating, n_catalog)
            for name, rec in recommenders.items()
        }
    with timings.phase("rating_metrics"):
        rating = rating_metrics(split.train, split.test, train.rating_regularization)

    sizes = {
        "n_interactions": len(marts.interactions),
        "n_train_rows": len(split.train),
        "n_test_rows": len(split.test),
        "n_train_users": int(split.train[USER].nunique()),
        "n_train_items": int(split.train[ITEM].nunique()),
        "n_catalog_items": n_catalog,
        "n_eval_users": metrics[MODEL]["n_users"],
        "n_cold_eval_users": 0 if cold[MODEL] is None else cold[MODEL]["n_users"],
    }
    cutoff = None if split.cutoff is None else split.cutoff.isoformat()
    with timings.phase("lineage_hashes"):
        lineage = _lineage(marts, split, model)
    return Outcome(
        model, split, cutoff, metrics, cold, rating, curves, sizes, timings, lineage, scores,
        settings, repeat_policy(train),
    )  # fmt: skip


def _lineage(marts: Marts, split: Split, model: Recommender) -> dict[str, Any]:
    """What the run trained on: tables, holdout, load ids and the hashes of its matrices."""
    cutoff = None if split.cutoff is None else split.cutoff.isoformat()
    vocabularies = marts.users.fingerprint() + marts.items.fingerprint()
    return {
        "source_tables": list(SOURCE_TABLES),
        "holdout_strategy": split.strategy,
        "holdout_cutoff": cutoff,
        "train_reference_time": split.reference_time.isoformat(),
        "snapshot_time": marts.interactions[TIME].max().isoformat(),
        "train_load_ids": sorted(str(x) for x in split.train[LOAD_ID].dropna().unique())
        if LOAD_ID in split.train
        else [],
        "latest_load_id": marts.latest_load_id,
        "train_matrix_sha256": served_matrix_hash(model),
        "holdout_sha256": hashlib.sha256(
            # the frames hold codes: the vocabularies say which ids they are
            (frame_hash(split.train) + frame_hash(split.test) + vocabularies).encode()
        ).hexdigest(),
    }


def evaluation_summary(outcome: Outcome) -> dict[str, Any]:
    """The holdout as reports show it: strategy, params, reason, cutoff, reference time, users,
    and the repeat policy it was scored under (repeat_policy)."""
    return {
        **outcome.split.info(),
        "n_eval_users": outcome.sizes["n_eval_users"],
        "min_eval_users": outcome.settings.min_eval_users,
        "repeat_policy": outcome.policy,
    }


def served_matrix_hash(model: Recommender) -> str:
    """matrix_hash of the model's training matrix, rows and columns named by shop ids."""
    users = model.users.decode(model.user_ids).astype(str)
    items = model.items.decode(model.item_ids).astype(str)
    return matrix_hash(model.user_items, users, items)


def metric_values(outcome: Outcome) -> dict[str, float]:
    """Flat MLflow metrics: model_ndcg_at_10, cold_model_ndcg_at_10, rating_rmse, ... (no
    counts)."""
    flat = {
        f"{name}_{metric}": value
        for name, values in outcome.metrics.items()
        for metric, value in values.items()
        if metric != "n_users"
    }
    for name, values in outcome.cold_users.items():
        for metric, value in (values or {}).items():
            if metric != "n_users":
                flat[f"cold_{name}_{metric}"] = value
    for metric, value in outcome.rating.items():
        if isinstance(value, int | float) and metric != "n_ratings":
            flat[f"rating_{metric}"] = float(value)
    return flat


def _log_evaluation(outcome: Outcome, latest_load_id: Any, k: int) -> None:
    """The holdout's params, the lineage tags, the metrics and the per-user promotion metric."""
    lineage, split = outcome.lineage, outcome.split
    holdout_params = {
        "holdout_strategy": split.strategy,
        **({"holdout_cutoff": outcome.cutoff} if outcome.cutoff else {}),
        "holdout_reference_time": lineage["train_reference_time"],
    }
    mlflow.log_params({**holdout_params, **outcome.sizes})
    mlflow.set_tags(
        {
            "holdout_strategy": split.label,
            "holdout_reason": split.reason,
            "training_rows": str(outcome.sizes["n_train_rows"]),
            "latest_load_id": str(latest_load_id),
            "source_tables": ",".join(lineage["source_tables"]),
            "snapshot_time": lineage["snapshot_time"],
            "train_matrix_sha256": lineage["train_matrix_sha256"],
            registry.HOLDOUT_TAG: lineage["holdout_sha256"],
            "rating_predictor": outcome.rating["predictor"],
            "repeatable_events": ",".join(outcome.policy["repeatable_events"]) or "none",
            "repeat_policy": outcome.policy["excluded"],
        }
    )
    mlflow.log_dict(lineage, "lineage.json")
    mlflow.log_metrics(
        {**metric_values(outcome), "n_eval_users": float(outcome.sizes["n_eval_users"])}
    )
    metric = f"{PROMOTION_METRIC}_at_{k}"
    registry.log_per_user(metric, outcome.eval_shop_ids, outcome.per_user(metric))


def _log_plots(outcome: Outcome, final_recs: np.ndarray, final: Recommender, k: int) -> None:
    fig = plots.metrics_at_k_figure(outcome.curves)
    mlflow.log_figure(fig, "plots/metrics_at_k.png")
    plots.close(fig)
    items = final.item_ids
    train = outcome.split.train
    counts = np.bincount(
        np.searchsorted(items, train[ITEM].to_numpy(dtype=np.int64)), minlength=len(items)
    )
    valid = final_recs[final_recs >= 0]
    recommended = np.bincount(np.searchsorted(items, valid), minlength=len(items))
    fig = plots.long_tail_figure(counts.astype(float), recommended.astype(float), k)
    mlflow.log_figure(fig, "plots/long_tail.png")
    plots.close(fig)


def _champion_gate(
    client: MlflowClient, train: Train, outcome: Outcome, catalog: pd.DataFrame
) -> registry.Decision:
    """The gate of models_ml.registry on the per-user promotion metric of this holdout."""
    k = train.k
    metric = f"{PROMOTION_METRIC}_at_{k}"
    per_user = outcome.per_user(metric)
    split, settings = outcome.split, outcome.settings
    users = outcome.eval_user_ids  # codes; the logged values are keyed by shop ids

    def refit_and_score(meta: dict) -> np.ndarray:
        champion = families.from_params(meta).fit(
            split.train, catalog, outcome.model.users, outcome.model.items
        )
        scores = evaluate_many(
            {CHAMPION_KEY: champion}, split.train, split.test, k, train.min_relevant_rating,
            max_users=settings.max_eval_users, seed=train.seed,
            repeatable=train.repeatable_events,
        )[CHAMPION_KEY]  # fmt: skip
        if not np.array_equal(scores.user_ids, users):
            raise RuntimeError("the refitted champion was scored on other users than the candidate")
        return scores.per_user[metric]

    champion = registry.champion_scores(
        client,
        train.model_name,
        metric,
        MODEL,
        outcome.lineage["holdout_sha256"],
        outcome.eval_shop_ids,
        refit_and_score,
        f"{package.RUN_ARTIFACTS}/{package.PARAMS_FILE}",
    )
    decision = registry.decide(
        metric,
        per_user[MODEL],
        {name: per_user[name] for name in baselines_of(train)},
        None if champion is None else champion.values,
        min_eval_users=settings.min_eval_users,
        min_improvement=train.min_improvement,
        samples=settings.bootstrap_samples,
        confidence=settings.confidence,
        seed=train.seed,
        # the popularity family: served while there is no champion, never over a learned one
        baseline=families.served_baseline(
            train.family, train.repeat_weight, bool(train.repeatable_events)
        ),
        champion_baseline=champion is not None and champion.family in families.baselines(),
    )
    if champion is not None:
        decision.champion_version = champion.version
        decision.champion_scored_by = champion.scored_by
    return decision


def gate_metrics(decision: registry.Decision) -> dict[str, float]:
    """MLflow metrics of the gate: gate_<other>_gain / _ci_low / _ci_high, gate_n_users."""
    flat: dict[str, float] = {"gate_n_users": float(decision.n_users)}
    for c in decision.comparisons:
        for key in ("gain", "low", "high"):
            name = {"low": "ci_low", "high": "ci_high"}.get(key, key)
            flat[f"gate_{c['other']}_{name}"] = c[key]
    return flat


@dataclass
class TrainingRun:
    """What the steps of one training share: the settings it was given, the model they describe
    (families.Spec), the MLflow run it logs to (filled by _start_mlflow) and the seconds of its
    phases."""

    paths: config.Paths
    train: Train
    spec: families.Spec
    timings: Timings = field(default_factory=Timings)
    experiment_id: str = ""
    client: MlflowClient | None = None
    run_id: str = ""
    engine_name: str = engine.DUCKDB  # cfg.settings.engine
    spark: Any = None  # engine spark: the run's SparkSession (fit_engine)
    backend: mllib.Backend | None = None  # engine spark, family als: MLlib's fits
    recommendations_path: Path | None = None  # engine spark: where batch recommendations go
    # the rule set's default surface: the batch recommendations obey it (models_ml.rules)
    rules: RuleSet = NO_RULE_SET

    @property
    def k(self) -> int:
        return self.train.k


@dataclass
class Served:
    """The model this run would serve (refitted on all data, or the evaluated one) and its
    top-k lists for all its users (recommend_batch: item codes, -1 padded, and scores)."""

    model: Recommender
    recs: np.ndarray
    scores: np.ndarray


@dataclass
class Candidate:
    """The served model saved as a package (directory, under paths.models) and logged to MLflow
    as a pyfunc (uri) in its registered model's version (version)."""

    directory: Path
    uri: str
    version: Any


def run_training(cfg: config.Config) -> dict[str, Any]:
    """Train, evaluate, gate and log one model in one MLflow run; return the summary also
    written to <paths.reports>/train_metrics.json.

    Summary keys: run_id, experiment_id, tracking_uri, holdout_cutoff (None for leave-last-n),
    evaluation (the holdout's strategy, params, reason, cutoff, reference time, n_eval_users),
    k, family, model (the family fitted), popularity, recent_popularity and repeat (each
    {<metric>_at_<k>, n_users}; evaluation.repeat_policy says what they could recommend and
    what counted as relevant), cold_users (the same per model for users new in the test
    period), rating (RMSE/MAE of the rating
    predictor), n_eval_users, sizes, lineage, promotion (the gate's decision: n_users, means,
    the bootstrap interval of every comparison), model_version, recommendations_rows,
    timings (seconds), model_dir (the champion's local copy: this model only if promoted),
    model_uri (this run's logged pyfunc), report.
    """
    started = time.perf_counter()
    train = cfg.settings.train
    # the settings, resolved once: a wrong [train.<family>] value fails here, before any work
    job = TrainingRun(
        cfg.paths, train, families.spec(train, cfg.settings.ratings.max),
        engine_name=cfg.settings.engine,
        rules=load_rule_set(cfg.paths.home / cfg.settings.serve.rules),
    )  # fmt: skip
    with job.timings.phase("read"):  # read-only, closed before anything fits
        marts = read_training_data(FeatureStore(cfg))
    with job.timings.phase("holdout"):
        split = holdout(
            marts.interactions, train.evaluation, train.min_relevant_rating,
            train.repeatable_events,
        )  # fmt: skip
    run = _start_mlflow(job)
    with run, fit_engine(cfg, job):  # ends the run (and the Spark session), failed or not
        job.run_id = run.info.run_id
        _log_settings(job)
        version = _log_data_version(job)
        outcome = _fit(job, marts, split)
        _log_backend(job)
        with job.timings.phase("log_evaluation"):
            _log_evaluation(outcome, marts.latest_load_id, job.k)
        log.info("Comparing with the champion")
        with job.timings.phase("gate"):
            decision = _champion_gate(job.client, job.train, outcome, marts.catalog)
        served = _serving_model(job, outcome, marts)
        candidate = _package_and_register(job, outcome, served, marts.catalog)
        rows_written = _promote_or_discard(job, decision, served, candidate, marts.catalog)
        _finish_mlflow(job, decision, candidate)
    job.timings.close(started)
    return _write_report(job, outcome, version, decision, candidate, rows_written)


def recommendations_spark_path(cfg: config.Config) -> Path:
    """Engine spark: the folder of the batch recommendations table in Spark's warehouse
    (models_ml.batch: recommendations.user_recommendations as Parquet)."""
    return engine.spark_table_path(cfg, *batch.TABLE.split("."))


@contextmanager
def fit_engine(cfg: config.Config, job: TrainingRun) -> Iterator[None]:
    """Engine duckdb: nothing. Engine spark: one Spark session for the block (job.spark: it
    writes the batch recommendations) and, for the als family, MLlib fitting ALS in it
    (job.backend, models_ml.mllib.fitting_on); another family fits on the driver, as logged."""
    if not engine.is_spark(cfg):
        yield
        return
    job.recommendations_path = recommendations_spark_path(cfg)
    with ExitStack() as stack:
        with job.timings.phase("spark_session"):
            job.spark = stack.enter_context(engine.spark_session(cfg, "recomart-train"))
        if job.train.family == ALS.name:  # the family MLlib can fit
            checkpoints = cfg.paths.spark / CHECKPOINT_FOLDER
            job.backend = stack.enter_context(mllib.fitting_on(job.spark, checkpoints))
        else:
            log.warning(
                "engine spark: the %s family has no Spark MLlib fit; it fits on the driver"
                " (this process) from the Spark marts, as on DuckDB",
                job.train.family,
            )
        yield


def mllib_params(fit: dict[str, Any]) -> dict[str, Any]:
    """MLflow params of an MLlib ALS fit (models_ml.mllib.Backend.fits): mllib_<param>."""
    keys = ("rank", "maxIter", "regParam", "alpha", "implicitPrefs", "seed", "nonnegative")
    keys += ("numUserBlocks", "numItemBlocks")
    return {f"mllib_{key}": fit[key] for key in keys if key in fit}


def _log_backend(job: TrainingRun) -> None:
    """Engine spark: the tags engine, fit_backend (mllib or driver) and, after an MLlib fit, its
    params (mllib_params) and tags mllib_uid, spark_version."""
    if job.engine_name != engine.SPARK:
        return
    fits = job.backend.fits if job.backend is not None else []
    mlflow.set_tags(
        {"engine": job.engine_name, "fit_backend": mllib.BACKEND if fits else mllib.DRIVER}
    )
    if fits:
        mlflow.log_params(mllib_params(fits[0]))
        mlflow.set_tags({"mllib_uid": fits[0]["uid"], "spark_version": fits[0]["spark_version"]})


def _start_mlflow(job: TrainingRun) -> Any:
    """The experiment of paths.mlflow (job.experiment_id), a registry client (job.client) and a
    new run, returned unentered; stale RUNNING runs of killed trainings are marked FAILED."""
    with job.timings.phase("mlflow_setup"):
        job.experiment_id = use_experiment(job.paths.mlflow)
        job.client = MlflowClient(tracking_uri(job.paths.mlflow))
        return start_run(job.experiment_id)


def _log_settings(job: TrainingRun) -> None:
    """Into the active run: the [train] section as params (hyperparameters), the warehouse and
    family tags, and the section as it was (SETTINGS_ARTIFACT: recomart reproduce refits from
    it)."""
    with job.timings.phase("mlflow_setup"):
        mlflow.log_params(hyperparameters(job.train, job.spec.points))
        mlflow.set_tags({"warehouse": str(job.paths.warehouse), "family": job.train.family})
        rules = job.rules.describe(None)  # the batch recommendations' rules
        mlflow.set_tags({f"rule_set_{key}": value for key, value in rules.items()})
        mlflow.log_dict(job.train.model_dump(mode="json"), SETTINGS_ARTIFACT)


def _log_data_version(job: TrainingRun) -> dict[str, str]:
    """The DVC version of the exported marts this run trains on (paths.features), tagged on the
    run as data_<key> (recomart reproduce reads them) and returned."""
    with job.timings.phase("data_version"):
        version = data_version(job.paths.home, job.paths.features)
        mlflow.set_tags({f"{DATA_TAG_PREFIX}{key}": value for key, value in version.items()})
    return version


def _fit(job: TrainingRun, marts: Marts, split: Split) -> Outcome:
    """fit_and_evaluate on marts and their holdout split with the run's settings and timings;
    logs the holdout and the result. ValueError when the split leaves no train or test rows."""
    train, k = job.train, job.k
    if split.train.empty or split.test.empty:
        raise ValueError(f"holdout {split.label} leaves an empty train or test set")
    log.info("Read %d interactions; holdout: %s (%s)", len(marts.interactions), split.label,
             split.reason)  # fmt: skip
    log.info("Fitting %s and the baselines", train.family)
    outcome = fit_and_evaluate(marts, split, train, job.spec, job.timings)
    beside = ", ".join(
        f"{name} {outcome.metrics[name][f'ndcg_at_{k}']:.4f}" for name in baselines_of(train)
    )
    log.info(
        "Fitted on %d rows (holdout %s) in %.1f s; NDCG@%d %.4f (%s) over %d users;"
        " excluded: %s",
        outcome.sizes["n_train_rows"], outcome.split.label, job.timings["fit_seconds"], k,
        outcome.metrics[MODEL][f"ndcg_at_{k}"], beside, outcome.sizes["n_eval_users"],
        outcome.policy["excluded"],
    )  # fmt: skip
    return outcome


def _serving_model(job: TrainingRun, outcome: Outcome, marts: Marts) -> Served:
    """The model to serve: with [train] refit_on_all_data, a new one fitted on every interaction
    of marts (its matrix hash added to outcome.lineage and tagged served_matrix_sha256), else
    the evaluated outcome.model; its top-k for all its users; the plots logged."""
    train, timings = job.train, job.timings
    final = outcome.model
    if train.refit_on_all_data:
        log.info("Refitting on all %d rows for serving", len(marts.interactions))
        with timings.phase("refit"):
            final = job.spec.new().fit(marts.interactions, marts.catalog, marts.users, marts.items)
        with timings.phase("lineage_hashes"):
            outcome.lineage["served_matrix_sha256"] = served_matrix_hash(final)
        mlflow.set_tag("served_matrix_sha256", outcome.lineage["served_matrix_sha256"])
    with timings.phase("batch_recommend"):
        recs, scores = final.recommend_batch(final.user_ids, job.k)
    with timings.phase("plots"):
        _log_plots(outcome, recs, final, job.k)
    return Served(final, recs, scores)


def _package_and_register(
    job: TrainingRun, outcome: Outcome, served: Served, catalog: pd.DataFrame
) -> Candidate:
    """Save served.model as a package under paths.models with the item attributes of catalog
    (serving shows them without opening the warehouse), log it as the run's artifacts, then log
    and register it as a pyfunc under [train] model_name."""
    train, timings = job.train, job.timings
    with timings.phase("save_and_log_artifacts"):
        run_info = {
            "run_id": job.run_id,
            "holdout_cutoff": outcome.cutoff,
            "k": job.k,
            "refit_on_all_data": train.refit_on_all_data,
        }
        directory = package.save(served.model, job.paths.models, run_info, catalog)
        mlflow.log_artifacts(str(directory), artifact_path=package.RUN_ARTIFACTS)
    log.info("Logging and registering the model in MLflow")
    with timings.phase("log_pyfunc"):
        example_users = served.model.users.decode(served.model.user_ids[:1]).tolist()
        uri, version = log_pyfunc(
            directory, job.k, example_users, name=PYFUNC_NAME,
            registered_model_name=train.model_name,
        )  # fmt: skip
    return Candidate(directory, uri, version)


def _promote_or_discard(
    job: TrainingRun,
    decision: registry.Decision,
    served: Served,
    candidate: Candidate,
    catalog: pd.DataFrame,
) -> int | None:
    """As the gate decided: promote candidate.version to champion, install its package as the
    local champion and write its batch recommendations to the warehouse (returns the rows
    written); or discard the package (returns None)."""
    train, timings = job.train, job.timings
    log.info("Gate: %s (%s)", "promote" if decision.promote else "keep", decision.reason)
    if not decision.promote:
        package.discard(candidate.directory)
        return None
    with timings.phase("promote"):
        registry.promote(job.client, train.model_name, candidate.version)
        package.install(candidate.directory, job.paths.models)
    with timings.phase("write_recommendations"):
        if job.spark is not None:
            return batch.write_recommendations_spark(
                job.spark, job.recommendations_path, served.model, job.k, train.model_name,
                candidate.version, job.run_id, items=package.shop_items(served.model, catalog),
                recommended=(served.recs, served.scores), rules=job.rules.surface(None),
            )  # fmt: skip
        return batch.write_recommendations(
            job.paths.warehouse, served.model, job.k, train.model_name, candidate.version,
            job.run_id, items=package.shop_items(served.model, catalog),
            recommended=(served.recs, served.scores), rules=job.rules.surface(None),
        )  # fmt: skip


def _finish_mlflow(job: TrainingRun, decision: registry.Decision, candidate: Candidate) -> None:
    """Into the active run: the promotion tags, promotion.json, the phases' seconds and the
    gate's metrics (gate_metrics)."""
    with job.timings.phase("mlflow_finish"):
        mlflow.set_tags(
            {
                "promoted": str(decision.promote).lower(),
                "promotion_reason": decision.reason,
                "model_version": str(candidate.version),
            }
        )
        mlflow.log_dict(decision.as_dict(), "promotion.json")
        mlflow.log_metrics({**job.timings, **gate_metrics(decision)})


def _write_report(
    job: TrainingRun,
    outcome: Outcome,
    version: dict[str, str],
    decision: registry.Decision,
    candidate: Candidate,
    rows_written: int | None,
) -> dict[str, Any]:
    """The run's summary (run_training's keys), written to <paths.reports>/REPORT_FILE and
    returned."""
    paths, train = job.paths, job.train
    report = Path(paths.reports) / REPORT_FILE
    summary = {
        "run_id": job.run_id,
        "experiment_id": job.experiment_id,
        "tracking_uri": tracking_uri(paths.mlflow),
        "holdout_cutoff": outcome.cutoff,
        "evaluation": evaluation_summary(outcome),
        "k": job.k,
        "family": train.family,
        **outcome.metrics,  # "model" and each of baselines_of(train)
        "cold_users": outcome.cold_users,
        "rating": outcome.rating,
        "n_eval_users": outcome.sizes["n_eval_users"],
        "sizes": outcome.sizes,
        "lineage": outcome.lineage,
        "data_version": version,
        "promotion": decision.as_dict(),
        "model_name": train.model_name,
        "model_version": candidate.version,
        "recommendations_table": batch.TABLE if rows_written is not None else None,
        "recommendations_rows": rows_written,
        **(
            {"engine": job.engine_name, "recommendations_path": str(job.recommendations_path)}
            if job.engine_name == engine.SPARK
            else {}
        ),
        "timings": job.timings,
        "model_dir": str(package.local_dir(paths.models)),  # the champion's copy
        "model_uri": candidate.uri,
        "report": str(report),
    }
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
