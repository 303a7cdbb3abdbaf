"""The model package on disk (models_ml.package) and what a logged pyfunc model carries.

Serving, `recomart recommend` and the pyfunc entry point import neither the trainer nor the demo,
benchmarks or feature store (their import closure, computed from the sources like
tests/test_layers.py does). A logged model ships exactly the entry point's closure, and loads and
predicts in a fresh process started outside the project, with no PYTHONPATH and the project's own
installation hidden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from synthetic_marts import SHOP_USERS, shop_world, write_marts
from test_layers import graph

from models_ml import families, package, pyfunc
from models_ml.data import read_marts
from models_ml.tracking import tracking_uri, use_experiment
from recomart_core.schema import ITEM, USER

# What a served or shipped model must never pull in: training (MLflow runs, plots, tuning), the
# demo data and API, the benchmarks, the feature store (warehouse reads), the other stages.
FORBIDDEN = (
    "models_ml.train", "models_ml.tune", "models_ml.plots", "models_ml.data",
    "recomart", "feature_store", "dlt_pipelines", "dbt_project", "soda_checks",
)  # fmt: skip


def closure(start: list[str], edges: dict[str, set[str]]) -> set[str]:
    """start and every module of ours reachable from it, with each module's parent packages."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen or name not in edges:
            continue
        seen.add(name)
        todo += [name.rsplit(".", n)[0] for n in range(1, name.count(".") + 1)]
        todo += edges[name]
    return seen


def forbidden_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


def test_serving_cli_and_pyfunc_never_import_the_trainer() -> None:
    edges = graph()
    serving = [m for m in edges if m == "serving" or m.startswith("serving.")]
    for start in (serving, ["models_ml.pyfunc_entry"], ["serving.local"]):
        reached = closure(start, edges)
        assert "models_ml.package" in reached and "models_ml.recommender" in reached, start
        assert not forbidden_in(reached), (start, forbidden_in(reached))
    # the checker itself: the trainer's closure does hold them
    assert {"models_ml.plots", "feature_store"} <= closure(["models_ml.train"], edges)


def test_the_shipped_code_is_the_entry_points_import_closure() -> None:
    """models_ml.pyfunc computes the closure itself (it runs at logging time); it agrees with
    the layer test's independent import graph."""
    shipped = set(pyfunc.shipped_modules())
    assert shipped == closure([pyfunc.ENTRY_MODULE], graph())
    assert {"models_ml", "recomart_core", "models_ml.recommender"} <= shipped
    assert "recomart" not in shipped  # the top (command line, demo, benchmarks) is not shipped
    assert not forbidden_in(shipped)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small model on the shop's string ids, read through the feature store like training."""
    home = tmp_path_factory.mktemp("package_home")
    interactions, catalog = shop_world()
    warehouse = write_marts(home / "warehouse.duckdb", interactions, catalog)
    marts = read_marts(warehouse)
    model = families.from_flat(n_factors=4, iterations=5, few_interactions=0).fit(
        marts.interactions, marts.catalog, marts.users, marts.items
    )
    return {"home": home, "model": model, "marts": marts, "catalog": catalog}


def test_save_install_and_load_a_package(fitted: dict, tmp_path: Path) -> None:
    model, marts = fitted["model"], fitted["marts"]
    run = {"run_id": "r1", "holdout_cutoff": None, "k": 5}
    candidate = package.save(model, tmp_path, run, marts.catalog)
    assert candidate == tmp_path / package.CANDIDATE_DIR
    assert {p.name for p in candidate.iterdir()} == set(package.FILES)
    items = package.read_items(candidate)  # keyed by the shop's ids, not by codes
    expected = fitted["catalog"].sort_values(ITEM).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        items.sort_values(ITEM).reset_index(drop=True)[list(expected.columns)], expected
    )
    assert package.read_run(candidate) == run

    installed = package.install(candidate, tmp_path)
    assert installed == package.local_dir(tmp_path) and not candidate.exists()
    loaded = package.load_local(tmp_path)
    for user in SHOP_USERS:
        assert loaded.recommend_items(user, 5) == model.recommend_items(user, 5)
    assert loaded.params() == model.params()

    # a second promotion replaces the local copy whole
    second = package.save(model, tmp_path, {**run, "run_id": "r2"}, None)
    package.install(second, tmp_path)
    assert package.read_run(package.local_dir(tmp_path))["run_id"] == "r2"
    assert package.read_items(package.local_dir(tmp_path)) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [package.MODEL_DIR]
    discarded = package.save(model, tmp_path, run)
    package.discard(discarded)
    assert not discarded.exists()


def test_a_champion_copy_under_the_old_folder_name_loads_until_the_next_install(
    fitted: dict, tmp_path: Path
) -> None:
    """A home trained before the folder was `champion` keeps <models>/als: it is what
    load_local reads while no champion folder exists, and the next install removes it."""
    model = fitted["model"]
    old = package.save_recommender(model, tmp_path / "als")
    assert package.MODEL_DIR == "champion" and package.local_dir(tmp_path) == old
    user = SHOP_USERS[0]
    assert package.load_local(tmp_path).recommend_items(user, 5) == model.recommend_items(user, 5)
    package.install(package.save(model, tmp_path, {"run_id": "r3"}), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["champion"]
    assert package.local_dir(tmp_path) == tmp_path / "champion"


@pytest.mark.e2e  # logs to a real MLflow store, loads in a child process
def test_a_logged_model_ships_only_its_closure_and_predicts_in_a_fresh_process(
    fitted: dict, tmp_path: Path
) -> None:
    model = fitted["model"]
    candidate = package.save(model, tmp_path / "models", {"run_id": "x"}, fitted["marts"].catalog)
    mlflow_dir = tmp_path / "mlflow"
    experiment = use_experiment(mlflow_dir)
    with mlflow.start_run(experiment_id=experiment):
        uri, version = pyfunc.log_pyfunc(candidate, 5, ["007"], registered_model_name="pkg")
    assert version == "1"
    root = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "dl"))
    )
    code = root / "code"
    logged = {p.relative_to(code).as_posix() for p in code.rglob("*.py")}
    expected = {
        p.relative_to(pyfunc.CODE_ROOT).as_posix() for p in pyfunc.shipped_modules().values()
    }
    assert logged == expected
    absent = {
        "recomart/demo/datagen.py", "recomart/bench/serve.py", "feature_store/store.py",
        "models_ml/train.py", "models_ml/plots.py", "models_ml/data.py",
    }  # fmt: skip
    assert not absent & logged
    assert {"models_ml/__init__.py", "recomart_core/__init__.py"} <= logged
    assert package.pyfunc_package_dir(root).is_dir()

    # A fresh interpreter outside the project: no PYTHONPATH, and the project's editable
    # installation hidden, so only the model's own code/ can provide our modules.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    users = [*SHOP_USERS, "nobody"]
    script = f"""
import importlib.util, json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
assert importlib.util.find_spec("models_ml") is None  # the project is out of reach
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model({uri!r})
out = model.predict(pd.DataFrame({{{USER!r}: {users!r}}}), params={{"k": 3}})
top = ("models_ml", "recomart_core", "recomart")
ours = sorted(m for m in sys.modules if m.split(".")[0] in top)
print(json.dumps({{
    "items": out[{ITEM!r}].tolist(), "users": out[{USER!r}].tolist(), "modules": ours,
    "files": sorted({{sys.modules[m].__file__ for m in ours}}),
    "train": importlib.util.find_spec("models_ml.train") is not None,
}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = tracking_uri(mlflow_dir)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    expected_items, _ = model.recommend_ids(users, 3)
    assert result["items"] == [i for row in expected_items.tolist() for i in row if i is not None]
    assert result["users"] == [u for u in users for _ in range(3)]
    assert not result["train"]  # not shipped, and nothing else provides it
    assert set(result["modules"]) <= set(pyfunc.shipped_modules())
    assert not forbidden_in(set(result["modules"]))
    assert all(
        f.split("/code/")[-1].split("/")[0] in ("models_ml", "recomart_core")
        for f in result["files"]
    )
    assert not any(str(pyfunc.CODE_ROOT) in f for f in result["files"])
