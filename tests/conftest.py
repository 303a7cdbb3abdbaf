"""Shared fixtures: a small RecoMart home in a temporary folder, run through the real stack."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from recomart_core import config, env
from recomart_core.env import PROJECT_ROOT

env.prepare()  # every tool's telemetry off for the whole session

# what the API's schema fuzz checks on every answer (tests/test_serving.py, test_events.py)
SCHEMA_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SMALL = {"n_users": 400, "n_items": 150, "n_interactions": 12000}


def small_config(home: Path, **overrides: int) -> Path:
    """Write a copy of recomart.toml with small generator sizes into `home`; return its path."""
    text = (PROJECT_ROOT / "recomart.toml").read_text()
    for key, value in {**SMALL, **overrides}.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    path = home / "recomart.toml"
    path.write_text(text)
    return path


def with_code_under_test(env: dict[str, str]) -> dict[str, str]:
    """env with this checkout first on PYTHONPATH: a child process started in another directory
    imports this code, not an installed copy (a relative PYTHONPATH such as "." would follow the
    child's working directory)."""
    paths = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def run_stage(home: Path, config_file: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `recomart <args>` in a child process against `home`; fail the test on a non-zero exit."""
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(config_file)}
    env = with_code_under_test(env)
    env.pop("SOURCES__CATALOG__BASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "recomart.cli", *args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"recomart {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc


def with_format(home: Path, **fmt) -> config.Config:
    """The small config of `home` with [ingest.interactions] settings `fmt` (file-reader tests)."""
    cfg = config_for(home, small_config(home))
    return config.with_settings(cfg, ingest={"interactions": fmt})


def not_passed(result: dict) -> list[tuple[str, str, str | None, str]]:
    """(dataset, check name, column, outcome) of every check of a gate run that did not pass."""
    return [
        (dataset, check["name"], check["column"], check["outcome"])
        for dataset, summary in result["datasets"].items()
        for check in summary["checks"]
        if check["outcome"] != "passed"
    ]


def before_open(monkeypatch: pytest.MonkeyPatch, hook: Callable[[Path], None]) -> None:
    """Call `hook(path)` at the moment between the drop folder's listing and the open of each
    path (where another process may change the filesystem under the ingest): the ingest's own
    open (dlt_pipelines.interactions.files.open_beneath) wrapped for the test."""
    from dlt_pipelines.interactions import files

    opened = files.open_beneath

    def hooked(folder: Path, folder_fd: int, parts: tuple[str, ...]):
        hook(folder.joinpath(*parts))
        return opened(folder, folder_fd, parts)

    monkeypatch.setattr(files, "open_beneath", hooked)


def warehouse_rows(cfg: config.Config, sql: str) -> list[tuple]:
    """The rows `sql` returns from cfg's warehouse, opened read-only."""
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def table_counts(warehouse: Path, tables: list[str]) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


def project_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> config.Config:
    """A RecoMart home in `home` with the project's recomart.toml, made the process's own
    (RECOMART_HOME, RECOMART_CONFIG, working directory) for the test; its Config."""
    (home / "recomart.toml").write_text((PROJECT_ROOT / "recomart.toml").read_text())
    monkeypatch.setenv("RECOMART_HOME", str(home))
    monkeypatch.setenv("RECOMART_CONFIG", str(home / "recomart.toml"))
    monkeypatch.chdir(home)
    config.load.cache_clear()
    return config.load()


def config_for(home: Path, config_file: Path) -> config.Config:
    """The Config that a stage run with this home and config file sees."""
    saved = {k: os.environ.get(k) for k in ("RECOMART_HOME", "RECOMART_CONFIG")}
    os.environ["RECOMART_HOME"], os.environ["RECOMART_CONFIG"] = str(home), str(config_file)
    config.load.cache_clear()
    try:
        return config.load()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config.load.cache_clear()


RAW_TABLES = [
    "raw_interactions.interactions",
    "raw_interactions.interactions_quarantine",
    "raw_interactions.source_files",
    "raw_catalog.products",
]


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every stage once on small generated data, plus a second ingest; what tests look at."""
    home = tmp_path_factory.mktemp("recomart_home")
    cfg_file = small_config(home)
    cfg = config_for(home, cfg_file)
    run_stage(home, cfg_file, "generate")
    run_stage(home, cfg_file, "ingest")
    first = table_counts(cfg.paths.warehouse, RAW_TABLES)
    run_stage(home, cfg_file, "ingest")
    second = table_counts(cfg.paths.warehouse, RAW_TABLES)
    run_stage(home, cfg_file, "transform")
    run_stage(home, cfg_file, "quality")
    run_stage(home, cfg_file, "train")
    summary = run_stage(home, cfg_file, "summary").stdout
    return {
        "home": home,
        "cfg": cfg,
        "manifest": json.loads((cfg.paths.generated / "manifest.json").read_text()),
        "counts_first_ingest": first,
        "counts_second_ingest": second,
        "summary": summary,
    }


def varchar_ids(warehouse: Path) -> None:
    """Turn user_id and item_id into VARCHAR in every marts and history table of warehouse, in
    place: the marts as dbt builds them once ids are the shop's text (an integer id becomes its
    decimal text). The history views follow their tables."""
    with duckdb.connect(str(warehouse)) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
            " join information_schema.tables using (table_catalog, table_schema, table_name)"
            " where column_name in ('user_id', 'item_id') and table_type = 'BASE TABLE'"
            " and table_schema in ('marts', 'history')"
        ).fetchall()
        for schema, table, column in columns:
            con.execute(f'alter table "{schema}"."{table}" alter column "{column}" type varchar')


@pytest.fixture(scope="session")
def varchar_run(pipeline_run: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the pipeline's home (config, warehouse, reports) whose marts and history hold
    user_id and item_id as VARCHAR; its dbt target is the pipeline's."""
    source = pipeline_run["cfg"]
    home = tmp_path_factory.mktemp("varchar_home")
    shutil.copy(pipeline_run["home"] / "recomart.toml", home / "recomart.toml")
    cfg = config_for(home, home / "recomart.toml")
    cfg.paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source.paths.warehouse, cfg.paths.warehouse)
    shutil.copytree(source.paths.reports, cfg.paths.reports)
    varchar_ids(cfg.paths.warehouse)
    return {"home": home, "cfg": cfg, "dbt_target": source.paths.dbt_target}
