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

from recomart.core.env import PROJECT_ROOT
from recomart.core.settings import ConfigError, Settings, parse

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
    dbt_target: Path
    dbt_logs: Path


@dataclass(frozen=True)
class Config:
    """Resolved paths, the validated settings, and some sections as plain dicts (their readers
    index them by key); every default comes from recomart.core.settings."""

    paths: Paths
    generator: dict[str, Any] | None  # None: no demo data to generate (a shop's own files)
    transform: dict[str, Any]
    train: dict[str, Any]
    serve: dict[str, Any] = field(default_factory=dict)  # [serve]: the HTTP API
    settings: Settings = field(default_factory=lambda: parse({}))


def home() -> Path:
    return Path(os.environ.get("RECOMART_HOME", PROJECT_ROOT)).resolve()


def _resolve_paths(raw: dict[str, str], base: Path) -> Paths:
    resolved = {name: base / value for name, value in raw.items() if name != "interactions_glob"}
    in_project = base == PROJECT_ROOT
    return Paths(
        home=base,
        interactions_glob=str(base / raw["interactions_glob"]),
        # dbt keeps target/ in its project folder, where `dbt docs serve` looks, unless the
        # home is elsewhere (a test or a second environment): then it stays inside that home.
        dbt_target=DBT_PROJECT_DIR / "target" if in_project else base / "dbt_target",
        dbt_logs=DBT_PROJECT_DIR / "logs" if in_project else base / "dbt_logs",
        **resolved,
    )


@cache
def load(config_file: str | None = None) -> Config:
    """Read the config file (default: $RECOMART_CONFIG or recomart.toml) into a Config."""
    path = Path(config_file or os.environ.get("RECOMART_CONFIG", PROJECT_ROOT / "recomart.toml"))
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
        transform=settings.transform.model_dump(),
        train=settings.train.model_dump(),
        serve=settings.serve,
        settings=settings,
    )


def with_settings(cfg: Config, **sections: Any) -> Config:
    """cfg with some sections of its settings replaced, validated again (tests, one-off runs).

    `sections` are plain values as in the TOML file: `ingest={"interactions": {...}}`.
    """
    raw = {**cfg.settings.model_dump(exclude_none=True), **sections}
    settings = parse(raw, "settings")
    return replace(
        cfg,
        generator=settings.generator,
        transform=settings.transform.model_dump(),
        train=settings.train.model_dump(),
        serve=settings.serve,
        settings=settings,
    )
