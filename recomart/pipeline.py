"""The stages, in order, and the whole run. Each stage reads what the previous one left."""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from contextlib import AbstractContextManager, ExitStack, nullcontext
from datetime import datetime
from functools import partial
from pathlib import Path

from dbt_project import build as transform
from dlt_pipelines.catalog.helpers import CatalogLoadError
from dlt_pipelines.catalog_pipeline import catalog_settings, load_catalog
from dlt_pipelines.interactions_pipeline import load_interactions
from dlt_pipelines.lake_pipeline import replicate_to_lake
from feature_store.export import published_marts
from models_ml.families import baselines, check
from models_ml.train import run_training
from models_ml.tune import SERVED, TooSmallToTune, run_tuning, served_baseline
from recomart.demo import catalog_api, datagen
from recomart_core import config, engine
from recomart_core.logs import stage
from recomart_core.rulesets import load_rule_set
from recomart_core.settings import ConfigError, Generator
from soda_checks import gate

ingest_log = logging.getLogger("ingestion")
TIMINGS_FILE = "run_timings.json"


class IngestError(RuntimeError):
    """Some input could not be loaded (the rest was); the message names the file and column."""


@stage("generation")
def generate(cfg: config.Config, force: bool = False) -> dict:
    """Write the embedded default data (deterministic for the configured seed)."""

    log = logging.getLogger("generation")
    if cfg.generator is None:
        raise ValueError(
            "this configuration has no [generator] section: it reads the shop's own files"
            f" ({cfg.paths.interactions_glob}), there is no demo data to generate"
        )
    try:  # again: the command line's --users, --items and --interactions join the file's
        Generator.checked(cfg.generator)
    except ValueError as exc:
        raise ConfigError(f"[generator] with the command line's sizes: {exc}") from None
    manifest = cfg.paths.generated / "manifest.json"
    if manifest.exists() and not force:
        log.info("generated data already in %s (use --force to rewrite it)", cfg.paths.generated)
        return json.loads(manifest.read_text())
    log.info("generating data into %s", cfg.paths.generated)
    return datagen.generate(cfg.paths.generated, **cfg.generator)


@stage("ingestion")
def ingest(
    cfg: config.Config, source: str = "all", files: str | None = None, since: datetime | None = None
) -> dict:
    """dlt: interaction files and/or the product catalog into the raw datasets (the DuckDB
    warehouse: landing, quarantine, each file once). On engine spark, then what they loaded and
    the lake lacks into the lake (dlt_pipelines/lake_pipeline.py; result["lake"]: rows per table).

    Raises IngestError after loading everything else when a file could not be loaded.
    """
    result = {}
    if source in ("all", "interactions"):
        result["interactions"] = _ingest_interactions(cfg, files, since)
    if source in ("all", "catalog") and cfg.settings.catalog.source == "none":
        ingest_log.info(
            'No catalog to load ([catalog] source = "none"): the items are those the interactions'
            " name, and item features come from the interactions alone"
        )
    elif source in ("all", "catalog"):
        ingest_log.info("Ingesting the product catalog")
        started = time.perf_counter()
        try:
            with _catalog_url(cfg) as url:
                catalog = load_catalog(cfg, base_url=url)
        except CatalogLoadError as exc:  # the message names the URL, page and cause
            raise IngestError(str(exc)) from exc
        ingest_log.info(
            "Ingested %d products from %s (load %s)",
            catalog["products"], catalog["base_url"], catalog["load_id"],
        )  # fmt: skip
        result["catalog"] = {**catalog, "seconds": time.perf_counter() - started}
    if engine.is_spark(cfg):  # what did load goes to the lake, even when a file failed
        result["lake"] = replicate_to_lake(cfg)
    failed = [f for f in result.get("interactions", {}).get("files", []) if f["error"]]
    if failed:
        raise IngestError("; ".join(f["error"] for f in failed))
    return result


def _catalog_url(cfg: config.Config) -> AbstractContextManager[str | None]:
    """The configured catalog URL; with none, the demo's embedded catalog API over the generated
    catalog, on 127.0.0.1 while the block runs."""
    if cfg.settings.catalog.source != "api" or catalog_settings().base_url:
        return nullcontext(None)
    products_file = cfg.paths.generated / datagen.CATALOG_FILE
    if not products_file.exists():
        raise CatalogLoadError(
            f"no catalog URL configured ([sources.catalog] base_url) and no generated catalog at"
            f" {products_file} for the embedded API: run `recomart generate` first"
        )
    return catalog_api.serve(catalog_api.load_products(products_file))


def _ingest_interactions(cfg: config.Config, files: str | None, since: datetime | None) -> dict:

    pattern = files or cfg.paths.interactions_glob
    # loaded files stay, so no file at all is a mistake (a folder the glob matches is not a file)
    if not any(os.path.isfile(path) for path in glob.glob(pattern, recursive=True)):
        raise IngestError(
            f"no interaction file matches {pattern}. Run `make generate` for the demo data, or"
            " point [paths] interactions_glob in recomart.toml (or `--files`) at your CSV files."
        )
    ingest_log.info("Ingesting interactions from %s", pattern)
    result = load_interactions(cfg, files, since)
    for f in result["files"]:
        if f["error"]:
            ingest_log.error("File not loaded: %s", f["error"])
        else:
            ingest_log.info(
                "%s: %d rows, %d loaded, %d quarantined",
                f["source_file"], f["rows"], f["accepted"], f["quarantined"],
            )  # fmt: skip
    if result["files"]:
        ingest_log.info(
            "Ingested %d interactions, quarantined %d, from %d files (load %s, %.1f s)",
            sum(f["accepted"] for f in result["files"]),
            sum(f["quarantined"] for f in result["files"]),
            len(result["files"]), result["load_id"], result["seconds"],
        )  # fmt: skip
    else:
        ingest_log.info("No new interaction files")
    return result


@stage("transformation")
def transform_stage(cfg: config.Config) -> None:
    """dbt build into a candidate copy of the warehouse (dbt_project/build.py); on engine spark,
    dbt build on Spark from the lake that ingest wrote (transform.build, target spark)."""
    if engine.is_spark(cfg):
        transform.build(cfg, target=transform.SPARK)
    else:
        transform.run(cfg)


@stage("quality")
def quality(cfg: config.Config) -> dict:
    """The quality gate (soda_checks/gate.py): raises QualityGateError before anything trains.
    When it passes, the published marts are exported as Parquet to [paths] features (what DVC
    versions, feature_store.export): the live warehouse's, or on Spark the tables dbt-spark
    wrote."""
    result = gate.run(cfg)
    rows = published_marts(cfg)
    logging.getLogger("quality").info(
        "Exported %d marts (%s rows) to %s", len(rows), f"{sum(rows.values()):,}",
        cfg.paths.features,
    )  # fmt: skip
    return result


@stage("training")
def train(cfg: config.Config) -> dict:
    """The [train] family from the marts, evaluated against the baselines, tracked in MLflow."""

    log = logging.getLogger("training")
    log.info("Training")
    summary = run_training(cfg)  # a wrong [train.<family>] value fails first, before any work
    if summary.get("recommendations_path") and summary["recommendations_rows"] is not None:
        # engine spark: the batch recommendations' Parquet becomes a table of dbt's metastore
        transform.register_tables(
            cfg, {summary["recommendations_table"]: Path(summary["recommendations_path"])}
        )
        log.info("registered %s on Spark", summary["recommendations_table"])
    rules = load_rule_set(cfg.paths.home / cfg.settings.serve.rules)
    if summary["recommendations_rows"] is not None and not rules.surface(None).empty:
        if summary.get("recommendations_path"):
            log.info("the batch recommendations' rules test runs on DuckDB only (engine spark)")
        else:  # the lists obey the default surface's rules: checked by dbt, as written
            transform.batch_rules_test(cfg)
            log.info("batch recommendations obey rule set %s %s", rules.name, rules.version)
    return summary


@stage("training")
def serve_a_baseline(cfg: config.Config, summary: dict) -> dict | None:
    """After a training whose model the gate did not promote, with no champion to keep: train
    the baseline that scored best on the holdout as the popularity family (models_ml.tune
    SERVED), which the gate promotes while there is no champion, so the shop is served that
    baseline rather than nothing. Its training summary; None when a model or a champion is
    served already, or the model was a baseline itself."""
    promotion = summary["promotion"]
    if (
        promotion["promote"]
        or promotion.get("champion_value") is not None
        or summary["family"] in baselines()
    ):
        return None
    means = {name: v for name, v in promotion["baselines"].items() if name in SERVED}
    if not means:
        return None
    served = served_baseline(means)
    logging.getLogger("training").info(
        "the model is not promoted and there is no champion: serving %s (holdout %s %.4f vs"
        " model %.4f) until a model beats it", served["name"], promotion["metric"],
        served["validation"], promotion["candidate"],
    )  # fmt: skip
    return run_training(config.with_train(cfg, **served["params"]))


@stage("tuning")
def tune(cfg: config.Config, apply: bool = False, or_skip: bool = False) -> dict | None:
    """Model family and hyperparameter search on validation folds inside the training period,
    within [train.tune] budget_s; logs a short summary of the report (models_ml.tune).
    or_skip: None, with a warning, when the data is too small for a validation fold (the demo
    then trains [train] as written). apply: write the choice into the config file's [train]
    (nothing is written when the search chose nothing)."""

    check(cfg.settings.train)  # a wrong [train.<family>] value fails before any work
    log = logging.getLogger("tuning")
    log.info("Tuning (budget %g s)", cfg.settings.train.tune.budget_s)
    try:
        result = run_tuning(cfg)
    except TooSmallToTune as exc:
        if not or_skip:
            raise
        log.warning("no model search: %s; training [train] as written", exc)
        return None
    for line in result["summary"]:
        log.info("%s", line)
    if result["best_params"] is None:
        log.info("search log in %s; nothing to apply: [train] stays as written",
                 result["report"])  # fmt: skip
    elif apply:
        path = config.config_path()
        config.write_train_values(path, result["best_params"])
        log.info("search log in %s; [train] of %s now says:", result["report"], path)
        _log_lines(log, result["toml"])
    else:
        log.info("search log in %s; to use it, set in recomart.toml [train] (or run `recomart"
                 " tune --apply`):", result["report"])  # fmt: skip
        _log_lines(log, result["toml"])
    return result


def _log_lines(log: logging.Logger, text: str) -> None:
    """text a record per line (the formatter would escape a line break inside one value)."""
    for line in text.splitlines():
        log.info("%s", line)


def run_all(cfg: config.Config) -> None:
    """generate (if missing; not for a shop's own files) -> ingest -> transform -> quality gate
    -> (tune, on a shop's own files) -> train."""

    log = logging.getLogger("recomart")
    steps = {"generate": generate, "ingest": ingest, "transform": transform_stage,
             "quality gate": quality, "tune": partial(tune, or_skip=True),
             "train": train}  # fmt: skip
    if cfg.generator is None:  # the shop's own data: nothing to generate
        del steps["generate"]
    if cfg.generator is not None or not cfg.settings.train.tune.in_demo:
        del steps["tune"]  # the demo's [train] is already its tuned choice
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    with ExitStack() as spark:  # engine spark: one Spark session for the gate and the training
        for number, (name, step) in enumerate(steps.items(), start=1):  # progress: where, how long
            log.info("step %d/%d: %s (%.0f s so far)", number, len(steps), name,
                     time.perf_counter() - started)  # fmt: skip
            t0 = time.perf_counter()
            if name == "quality gate" and engine.is_spark(cfg):  # after dbt's own Spark process
                spark.enter_context(engine.spark_session(cfg))
            result = step(cfg)
            if name == "tune" and result and result["best_params"]:  # train the choice; the
                cfg = config.with_train(cfg, **result["best_params"])  # file stays as written
                log.info("training the choice; `recomart tune --apply` keeps it in %s",
                         config.config_path())  # fmt: skip
            elif name == "tune" and result:  # the champion gate decides on [train] as written
                why = result["refused"] or result["decision"]["why"]
                log.info("the search chose nothing (%s): training [train] as written", why)
            if name == "train":  # nothing promoted and no champion: the best baseline, served
                serve_a_baseline(cfg, result)
            seconds[name] = round(time.perf_counter() - t0, 3)
            for source in ("interactions", "catalog") if name == "ingest" else ():
                if source in result:
                    seconds[f"ingest {source}"] = round(result[source]["seconds"], 3)
    seconds["total"] = round(time.perf_counter() - started, 3)
    write_timings(cfg, seconds)


def write_timings(cfg: config.Config, seconds: dict[str, float]) -> None:
    """<reports>/run_timings.json: seconds per step of the last whole run (`make bench-demo`)."""
    cfg.paths.reports.mkdir(parents=True, exist_ok=True)
    (cfg.paths.reports / TIMINGS_FILE).write_text(json.dumps(seconds, indent=2) + "\n")
