"""Data versioning with DVC, end to end in a temporary git repository (never the project's own):
the project's dvc.yaml and .dvc/config, real `dvc repro` running the real stages, a local DVC
remote, and `recomart reproduce` retraining a past run from the data version it recorded.

The scenario (one module fixture): version 1 = generate + `dvc repro` + commit + push; then a
[train] parameter changes (`dvc repro` again); then a new interaction file arrives (version 2)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recomart_core.env import PROJECT_ROOT
from recomart_core.versioning import dir_md5

pytestmark = pytest.mark.e2e  # dvc, dlt, dbt, Soda and MLflow in child processes

CODE = ("recomart_core", "dlt_pipelines", "soda_checks", "feature_store", "models_ml")
DBT = ("dbt_project.yml", "macros", "models")
NEW_FILE = "user_id,item_id,rating,timestamp,event_type\n" + "".join(
    f"{i % 40 + 1},{i % 30 + 1},5,2026-10-20 10:00:{i % 60:02d},purchase\n" for i in range(50)
)


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    """A command in home with the project's environment; fail the test on a non-zero exit."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RECOMART_HOME": str(home),
        "RECOMART_CONFIG": str(home / "recomart.toml"),
        "DVC_NO_ANALYTICS": "true",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
    }  # fmt: skip
    env.pop("SOURCES__CATALOG__BASE_URL", None)
    proc = subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}"
                    f"\n{proc.stderr[-3000:]}")  # fmt: skip
    return proc


def file_set(folder: Path) -> dict[str, str]:
    """{relative path: md5} of every file under folder."""
    return {
        p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def lock_out(home: Path, stage: str, path: str) -> str:
    lock = yaml.safe_load((home / "dvc.lock").read_text())
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == path)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("shop")
    run(home, "git", "init", "-q")
    run(home, sys.executable, "-m", "dvc", "init", "-q")
    shutil.copyfile(PROJECT_ROOT / ".dvc" / "config", home / ".dvc" / "config")
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copyfile(PROJECT_ROOT / name, home / name)
    toml = (PROJECT_ROOT / "recomart.toml").read_text()
    small = {"n_users = 5000": "n_users = 400", "n_items = 1000": "n_items = 150",
             "n_interactions = 100000": "n_interactions = 8000"}  # fmt: skip
    for old, new in small.items():
        assert old in toml
        toml = toml.replace(old, new)
    (home / "recomart.toml").write_text(toml)
    ignore = shutil.ignore_patterns("__pycache__", "target", "logs", "dbt_packages")
    for name in CODE:
        shutil.copytree(PROJECT_ROOT / name, home / name, ignore=ignore)
    for name in DBT:
        source, target = PROJECT_ROOT / "dbt_project" / name, home / "dbt_project" / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(source, target)
    run(home, "recomart", "generate")

    first = run(home, "dvc", "repro")
    v1 = json.loads((home / "reports" / "train_metrics.json").read_text())
    v1_raw = file_set(home / "data" / "raw")
    v1_features = lock_out(home, "quality", "data/features")
    run(home, "git", "add", "-A")
    run(home, "git", "commit", "-qm", "version 1")
    run(home, "dvc", "push", "-q")

    toml = (home / "recomart.toml").read_text()
    assert "\nregularization = 50.0" in toml
    (home / "recomart.toml").write_text(
        toml.replace("\nregularization = 50.0", "\nregularization = 10.0")
    )
    status = run(home, "dvc", "status")
    param_change = run(home, "dvc", "repro")
    run(home, "git", "commit", "-qam", "regularization 10")

    (home / "data" / "generated" / "interactions" / "more.csv").write_text(NEW_FILE)
    run(home, "dvc", "repro")
    v2_raw = file_set(home / "data" / "raw")
    run(home, "git", "add", "-A")
    run(home, "git", "commit", "-qm", "version 2")
    run(home, "dvc", "push", "-q")
    return {
        "home": home, "first": first, "v1": v1, "v1_raw": v1_raw, "v2_raw": v2_raw,
        "v1_features": v1_features, "status": status, "param_change": param_change,
    }  # fmt: skip


def test_checking_out_an_old_landing_area_restores_its_files_exactly(versions: dict) -> None:
    home, v1_raw, v2_raw = versions["home"], versions["v1_raw"], versions["v2_raw"]
    new = set(v2_raw) - set(v1_raw)
    assert any(p.endswith("_more.csv") for p in new)  # the new file was landed as it arrived
    assert all(v2_raw[p] == md5 for p, md5 in v1_raw.items())  # append-only: nothing changed
    run(home, "git", "checkout", "-q", "HEAD~2", "--", "dvc.lock")
    run(home, "dvc", "checkout", "data/raw")
    assert file_set(home / "data" / "raw") == v1_raw
    run(home, "git", "checkout", "-q", "HEAD", "--", "dvc.lock")
    run(home, "dvc", "checkout", "data/raw")
    assert file_set(home / "data" / "raw") == v2_raw
    # the remote and the cache stay out of git; the warehouse is never a DVC object
    ignored = run(home, "git", "check-ignore", "data/dvc-remote", ".dvc/cache").stdout.split()
    assert ignored == ["data/dvc-remote", ".dvc/cache"]
    lock = (home / "dvc.lock").read_text()
    assert "duckdb" not in lock and "path: data/features" in lock and "path: data/raw" in lock


def test_a_parameter_change_reruns_only_training(versions: dict) -> None:
    assert re.findall(r"^(\w+):", versions["status"].stdout, re.M) == ["train"]
    out = versions["param_change"].stdout
    assert re.findall(r"Running stage '(\w+)'", out) == ["train"]
    assert sorted(re.findall(r"Stage '(\w+)' didn't change", out)) == [
        "ingest", "quality", "transform",
    ]  # fmt: skip
    assert re.findall(r"Running stage '(\w+)'", versions["first"].stdout) == [
        "ingest", "transform", "quality", "train",
    ]  # fmt: skip


def test_reproducing_an_earlier_run_gives_its_metrics(versions: dict) -> None:
    home, v1 = versions["home"], versions["v1"]
    # the run recorded the DVC version of the marts it trained on, as dvc.lock has it
    assert v1["data_version"]["features_md5"] == versions["v1_features"]
    assert dir_md5(home / "data" / "features") != versions["v1_features"]  # new data since
    out = run(home, "recomart", "reproduce", v1["run_id"]).stdout
    assert f"on the marts {versions['v1_features']}" in out
    assert "largest difference 0" in out
    ndcg = re.search(r"model_ndcg_at_10\s+([\d.]+)\s+([\d.]+)", out)
    assert float(ndcg[1]) == float(ndcg[2]) == pytest.approx(v1["model"]["ndcg_at_10"], abs=1e-6)
    assert not list(home.glob(".recomart-reproduce-*"))  # its temporary .dvc file is gone
