"""Load recomart.toml once and resolve every path against the project home.

The home is the project folder, or $RECOMART_HOME when set (tests and second environments use it).
The config file is <project>/recomart.toml, or $RECOMART_CONFIG.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from recomart_core.env import PROJECT_ROOT
from recomart_core.settings import ConfigError, Settings, parse

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
SODA_DIR = PROJECT_ROOT / "soda_checks"


@dataclass(frozen=True)
class Paths:
    """Absolute paths of everything the pipeline reads and writes."""

    home: Path
    generated: Path
    interactions_glob: str
    warehouse: Path
    dlt_pipelines: Path
    mlflow: Path
    models: Path
    logs: Path
    reports: Path
    raw: Path  # the landing area (append-only)
    features: Path  # the published marts as Parquet, written after the gate passes
    lake: Path  # engine spark: the raw datasets as Parquet (dbt_project/lake.py)
    spark: Path  # engine spark: Spark's warehouse, Derby metastore, spark-defaults.conf
    events: Path  # POST /events' spool files (serving.spool), for the warehouse's ingest
    dbt_target: Path
    dbt_logs: Path
    feature_store: Path  # the feature store's own DuckDB file, never the warehouse


FEATURE_STORE_FILE = "feature_store.duckdb"  # beside the warehouse unless [paths] names one


@dataclass(frozen=True)
class Config:
    """Resolved paths and the validated settings: typed sections (cfg.settings.train.alpha,
    cfg.settings.serve.port, ...), every default from recomart_core.settings."""

    paths: Paths
    generator: dict[str, Any] | None  # None: no demo data to generate (a shop's own files)
    settings: Settings = field(default_factory=lambda: parse({}))


def home() -> Path:
    return Path(os.environ.get("RECOMART_HOME", PROJECT_ROOT)).resolve()


def _resolve_paths(raw: dict[str, str | None], base: Path) -> Paths:
    special = ("interactions_glob", "feature_store")
    resolved = {name: base / value for name, value in raw.items() if name not in special}
    in_project = base == PROJECT_ROOT
    feature_store = raw.get("feature_store")
    return Paths(
        home=base,
        interactions_glob=str(base / raw["interactions_glob"]),
        feature_store=base / feature_store
        if feature_store
        else resolved["warehouse"].parent / FEATURE_STORE_FILE,
        # dbt keeps target/ in its project folder, where `dbt docs serve` looks, unless the
        # home is elsewhere (a test or a second environment): then it stays inside that home.
        dbt_target=DBT_PROJECT_DIR / "target" if in_project else base / "dbt_target",
        dbt_logs=DBT_PROJECT_DIR / "logs" if in_project else base / "dbt_logs",
        **resolved,
    )


@cache
def load(config_file: str | None = None) -> Config:
    """Read the config file (default: $RECOMART_CONFIG or recomart.toml) into a Config."""
    path = Path(config_file) if config_file else config_path()
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"no configuration file {path} (RECOMART_CONFIG names another)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    settings = parse(raw, str(path))
    return Config(
        paths=_resolve_paths(settings.paths.model_dump(), home()),
        generator=settings.generator,
        settings=settings,
    )


def config_path() -> Path:
    """The config file load() reads: $RECOMART_CONFIG or <project>/recomart.toml."""
    return Path(os.environ.get("RECOMART_CONFIG", PROJECT_ROOT / "recomart.toml"))


def write_train_values(path: Path, values: dict[str, Any]) -> None:
    """Set [train] keys in a config file, comments and layout kept (tomlkit): "key" in [train],
    "table.key" in its table [train.table] (a model family's own settings, e.g. "ease.l2"); the
    result is validated before it replaces the file (ConfigError, file unchanged, if it is not
    valid; the family tables' values are checked by models_ml.families.check at start)."""
    import tomlkit  # only `recomart tune --apply` edits a config file

    document = tomlkit.parse(path.read_text())
    train = document.setdefault("train", tomlkit.table())
    for key, value in values.items():
        if "." in key:
            table, name = key.split(".", 1)
            train.setdefault(table, tomlkit.table())[name] = value
        else:
            train[key] = value
    text = tomlkit.dumps(document)
    parse(tomllib.loads(text), str(path))
    path.write_text(text)


def with_settings(cfg: Config, **sections: Any) -> Config:
    """cfg with some sections of its settings replaced, validated again (tests, one-off runs).

    `sections` are plain values as in the TOML file: `ingest={"interactions": {...}}`.
    """
    raw = {**cfg.settings.model_dump(exclude_none=True), **sections}
    settings = parse(raw, "settings")
    return replace(cfg, generator=settings.generator, settings=settings)


def with_train(cfg: Config, **changes: Any) -> Config:
    """cfg with some [train] keys changed, validated again: `with_train(cfg, alpha=8.0,
    als={"factors": 8})`, or as the search names a family's own key, `**{"als.factors": 8}`; a
    nested section (evaluation, cold_start, tune, a family's table) is merged key by key."""
    train = cfg.settings.train.model_dump()
    tables = train["families"]
    for key, value in changes.items():
        if "." in key:  # "<family>.<key>": a key of the family's table [train.<family>]
            family, own = key.split(".", 1)
            tables[family] = {**tables.get(family, {}), own: value}
            continue
        if isinstance(value, dict) and key not in train:  # a family's table [train.<key>]
            tables[key] = {**tables.get(key, {}), **value}
            continue
        nested = isinstance(value, dict) and isinstance(train.get(key), dict)
        train[key] = {**train[key], **value} if nested and key != "event_weights" else value
    return with_settings(cfg, train=train)
