"""The `recomart` command: one subcommand per stage, and `demo` for the whole run."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime

from dbt_project import build as transform
from dbt_project.build import DbtError
from models_ml import families
from recomart import errors, pipeline, summary
from recomart.bench.movielens import print_benchmark
from recomart.demo import catalog_api, datagen
from recomart.reproduce import ReproduceError, print_reproduction, reproduce
from recomart_core import config, env, logs
from recomart_core.settings import ENGINES, ConfigError
from recomart_core.warehouse import PublishError
from serving.local import print_recommendations
from serving.server import run as serve
from serving.settings import ServeSettings
from soda_checks.gate import QualityGateError

# Failures with a message that says what to do; anything else also prints its traceback.
EXPECTED = (
    pipeline.IngestError, DbtError, QualityGateError, PublishError, FileNotFoundError,
    ValueError, OSError, ReproduceError,
)  # fmt: skip

# Exit codes: 0 done, 1 a stage failed, 2 a configuration error, 3 the data quality gate
# failed (a verdict on the data, not a fault to retry: orchestration/airflow_dag.py reads it).
EXIT_FAILED, EXIT_CONFIG, EXIT_GATE_FAILED = 1, 2, 3

STAGES = {
    "generate": "write the embedded default data (interactions CSV, catalog, manifest)",
    "catalog-api": "serve the generated catalog in the Fake Store API's shape",
    "ingest": "dlt: interactions CSV and catalog API into the raw datasets",
    "transform": "dbt build: staging, cleaning, feature marts and their history, tests",
    "quality": "Soda v4 contracts: the quality gate and its report",
    "train": "the [train] family from the marts vs the baselines, tracked in MLflow",
    "tune": "choose the model family and its parameters on validation folds of the training period",
    "recommend": "recommendations (and why) for one user from the trained model",
    "reproduce": "retrain a past MLflow run on the data version it recorded, compare its metrics",
    "bench-movielens": "the model on MovieLens 100K, Microsoft Recommenders' protocol",
    "serve": "the recommendation API (FastAPI) on the registry's champion, 127.0.0.1:8000",
    "docs": "dbt docs generate",
    "summary": "print what the last run left in the warehouse and reports",
    "demo": "the whole pipeline, then the summary",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recomart", description=__doc__)
    parser.add_argument(
        "--engine", choices=ENGINES,
        help="run transform, quality gate and training on this engine (default: recomart.toml's)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in STAGES.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == "generate":
            cmd.add_argument("--force", action="store_true", help="rewrite existing data")
            cmd.add_argument("--seed", type=int)
            cmd.add_argument("--users", type=int, dest="n_users")
            cmd.add_argument("--items", type=int, dest="n_items")
            cmd.add_argument("--interactions", type=int, dest="n_interactions")
        if name == "ingest":
            cmd.add_argument(
                "--source", choices=("all", "interactions", "catalog"), default="all",
                help="which source to load (default: both)",
            )  # fmt: skip
            cmd.add_argument("--files", help="a glob of interaction files (default: from config)")
            cmd.add_argument(
                "--since", type=_utc_datetime,
                help="only interaction files modified at or after this UTC date/time",
            )  # fmt: skip
        if name == "recommend":
            cmd.add_argument("user_id", help="the shop's user id (text)")
            cmd.add_argument("-n", type=int, default=None, help="how many (default: [train] k)")
            cmd.add_argument("--explain", action="store_true", help="which items drove each one")
        if name == "tune":
            cmd.add_argument(
                "--apply", action="store_true",
                help="write the chosen family and parameters into the config file's [train]",
            )  # fmt: skip
            cmd.add_argument(
                "--budget", type=float, metavar="SECONDS",
                help="wall-clock seconds the search may take (default: [train.tune] budget_s)",
            )  # fmt: skip
        if name == "reproduce":
            cmd.add_argument("run_id", help="the MLflow run id of a training run")
        if name == "bench-movielens":
            cmd.add_argument("--path", help="a MovieLens ratings file (default: ../shared/...)")
        if name == "serve":
            cmd.add_argument("--host", help="default: [serve] host (127.0.0.1)")
            cmd.add_argument("--port", type=int, help="default: [serve] port (8000)")
            cmd.add_argument(
                "--poll-seconds", type=float,
                help="registry polling period for a new champion (0: off; default [serve])",
            )  # fmt: skip
            cmd.add_argument("--no-access-log", action="store_true")
        if name == "catalog-api":
            cmd.add_argument("--host", default="127.0.0.1")
            cmd.add_argument("--port", type=int, default=8088)
    return parser


def _run(args: argparse.Namespace, cfg: config.Config) -> None:
    match args.command:
        case "generate":
            overrides = {
                k: v for k in ("seed", "n_users", "n_items", "n_interactions")
                if (v := getattr(args, k)) is not None
            }  # fmt: skip
            pipeline.generate(_with_generator(cfg, overrides), force=args.force or bool(overrides))
        case "catalog-api":
            products = cfg.paths.generated / datagen.CATALOG_FILE
            catalog_api.run_forever(products, args.host, args.port)
        case "ingest":
            pipeline.ingest(cfg, args.source, args.files, args.since)
        case "transform":
            pipeline.transform_stage(cfg)
        case "quality":
            pipeline.quality(cfg)
        case "train":
            pipeline.train(cfg)
        case "tune":
            if args.budget is not None:
                cfg = config.with_train(cfg, tune={"budget_s": args.budget})
            pipeline.tune(cfg, apply=args.apply)
        case "recommend":
            print_recommendations(cfg, args.user_id, args.n, args.explain)
        case "reproduce":
            print_reproduction(reproduce(cfg, args.run_id))
        case "bench-movielens":
            print_benchmark(cfg, args.path)
        case "serve":
            where = ServeSettings.from_config(cfg.settings.serve, host=args.host, port=args.port)
            errors.ensure_port_free(where.host, where.port)  # uvicorn would only log and exit
            serve(cfg, args.host, args.port, args.poll_seconds, not args.no_access_log)
        case "docs":
            transform.docs(cfg)
        case "summary":
            print(summary.render(cfg))
        case "demo":
            pipeline.run_all(cfg)
            print(summary.render(cfg))


def _utc_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _with_generator(cfg: config.Config, overrides: dict) -> config.Config:
    return replace(cfg, generator={**cfg.generator, **overrides}) if overrides else cfg


def main(argv: list[str] | None = None) -> int:
    env.prepare()  # telemetry off, dlt's project dir: before any tool runs
    args = _parser().parse_args(argv)
    logs.setup_console()
    try:
        cfg = config.load()
        if args.engine:
            cfg = config.with_settings(cfg, engine=args.engine)
        families.check(cfg.settings.train)  # the [train.<family>] tables, validated by families
    except ConfigError as exc:  # a wrong setting: named, before any stage runs
        logging.getLogger("recomart").error("%s: configuration error: %s", args.command, exc)
        return EXIT_CONFIG
    started = time.perf_counter()
    try:
        _run(args, cfg)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a stage stopped; the last good state stays
        log = logging.getLogger("recomart")
        # a failure newcomers meet (locked warehouse, port taken, no model, missing file):
        # what happened and what to do, without the traceback
        if advice := errors.explain(exc, args.command, cfg, getattr(args, "port", None)):
            log.error("%s failed: %s", args.command, advice.what)
            log.error("what to do: %s", advice.todo)
        elif isinstance(exc, EXPECTED):  # a reason it states itself
            log.error("%s failed: %s", args.command, exc)
        else:
            log.exception("%s failed unexpectedly", args.command)
        return EXIT_GATE_FAILED if isinstance(exc, QualityGateError) else EXIT_FAILED
    logging.getLogger("recomart").info(
        "%s done in %.1f s", args.command, time.perf_counter() - started
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
