"""The stages, in order, and the whole run. Each stage reads what the previous one left."""

from __future__ import annotations

import logging

from recomart import config, transform

log = logging.getLogger("recomart")


def generate(cfg: config.Config, force: bool = False) -> dict:
    """Write the embedded default data (deterministic for the configured seed)."""
    import json

    from recomart import datagen

    manifest = cfg.paths.generated / "manifest.json"
    if manifest.exists() and not force:
        log.info("generated data already in %s (use --force to rewrite it)", cfg.paths.generated)
        return json.loads(manifest.read_text())
    log.info("generating data into %s", cfg.paths.generated)
    return datagen.generate(cfg.paths.generated, **cfg.generator)


def ingest(cfg: config.Config) -> dict:
    """dlt: interaction files and the product catalog into the raw datasets."""
    from dlt_pipelines.catalog_pipeline import load_catalog
    from dlt_pipelines.interactions_pipeline import load_interactions

    log.info("ingesting interactions from %s", cfg.paths.interactions_glob)
    interactions = load_interactions(cfg)
    for f in interactions["files"]:
        if f["error"]:
            log.error("file not loaded: %s", f["error"])
        else:
            log.info(
                "%s: %d rows, %d accepted, %d quarantined",
                f["source_file"], f["rows"], f["accepted"], f["quarantined"],
            )  # fmt: skip
    if not interactions["files"]:
        log.info("no new interaction files")
    log.info("ingesting the product catalog")
    catalog = load_catalog(cfg)
    log.info("catalog from %s: %d products", catalog["base_url"], catalog["products"])
    return {"interactions": interactions, "catalog": catalog}


def transform_stage(cfg: config.Config) -> None:
    """dbt build: staging, cleaning, marts, snapshots and their tests."""
    log.info("dbt build")
    transform.build(cfg)


def quality(cfg: config.Config) -> dict:
    """Soda contracts; raises QualityGateError when a check fails, before anything trains."""
    from recomart import quality as q

    log.info("verifying the Soda contracts")
    result = q.run_quality(cfg)
    q.enforce(result)
    return result


def train(cfg: config.Config) -> dict:
    """ALS from the marts, evaluated against popularity, tracked in MLflow."""
    from models_ml.train import run_training

    log.info("training")
    return run_training(cfg)


def run_all(cfg: config.Config) -> None:
    """generate (if missing) -> ingest -> transform -> quality gate -> train."""
    generate(cfg)
    ingest(cfg)
    transform_stage(cfg)
    quality(cfg)
    train(cfg)
