"""A trained model on disk: the one module that knows its files, saves, loads and installs it.

A model package is one directory:

    model.npz        the family's Scorer (models_ml.families): factors, item-item weights
    user_items.npz   the training confidence matrix (users x items, CSR)
    ids.npz          id maps, vocabularies (the shop's ids), cold-start arrays
    repeats.npz      the repeat policy's users x items CSRs: excluded pairs (structure only)
                     and repeat scores ([train] repeatable_events; absent before format 5:
                     every stored cell of user_items excluded, nothing repeats), and the
                     last purchase of each bought pair in seconds (the rules' exclude_bought;
                     absent in packages saved before it: nothing known to be bought)
    params.json      {"format_version": 6, "family", "common" (the shared settings),
                     "settings" (the family's own), "implicit_version"}; formats 3-5 held
                     {"format_version", "params" (flat), "implicit_version"}, still read
    items.parquet    item_id (the shop's id), title, category, price: what serving shows
    training.json    the run that produced it: run_id, holdout_cutoff, k, refit_on_all_data

Where packages live: training saves a candidate in <paths.models>/.champion.candidate, logs it
as the run artifact folder RUN_ARTIFACTS and inside the pyfunc model as its artifact
PYFUNC_ARTIFACT; a promoted candidate replaces <paths.models>/champion (MODEL_DIR, what `recomart
recommend` reads) in two renames. A home trained before the folder had that name keeps its copy
in <paths.models>/als (LEGACY_DIRS): it is read while no champion folder exists, and the next
install removes it. Serving downloads the registry's pyfunc model and finds the package inside it
(pyfunc_package_dir). Nothing here imports MLflow, the training code or the warehouse.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.sparse import csr_matrix, issparse, load_npz, save_npz

from models_ml import families
from models_ml.recommender import Recommender, RecommenderState, Scorer
from recomart_core.schema import ITEM

FORMAT_VERSION = families.FORMAT  # 3: shop id vocabularies (string ids); 4: model families
# (model.npz); 5: the repeat policy (repeats.npz); 6: params nested {family, common, settings}
READABLE = (*families.READ_FLAT, FORMAT_VERSION)  # 3: ALS in implicit's als.npz, family "als"
MODEL_DIR = "champion"  # the champion's local copy: <paths.models>/champion
LEGACY_DIRS = ("als",)  # its name before (read when MODEL_DIR is absent; install removes it)
MODEL_FILE = "model.npz"
ALS_FILE_V3 = "als.npz"
USER_ITEMS_FILE = "user_items.npz"
IDS_FILE = "ids.npz"
REPEATS_FILE = "repeats.npz"
PARAMS_FILE = "params.json"
ITEMS_FILE = "items.parquet"
RUN_FILE = "training.json"
FILES = (MODEL_FILE, USER_ITEMS_FILE, IDS_FILE, REPEATS_FILE, PARAMS_FILE, ITEMS_FILE, RUN_FILE)
RUN_ARTIFACTS = "model"  # the MLflow run's artifact folder holding the package
PYFUNC_ARTIFACT = "recommender"  # the pyfunc model's artifact holding the package
CANDIDATE_DIR = f".{MODEL_DIR}.candidate"
OLD_DIR = f".{MODEL_DIR}.old"


# ------------------------------------------------------------------------------ the recommender
def save_recommender(model: Recommender, directory: str | Path) -> Path:
    """Write the recommender's files (factors, matrix, ids, repeat policy, params) into
    directory; return it."""
    state = model.state()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_scorer(state.scorer, directory / MODEL_FILE)
    save_npz(directory / USER_ITEMS_FILE, state.user_items)
    np.savez(directory / IDS_FILE, **state.arrays)
    save_repeats(state.excluded, state.repeats, directory / REPEATS_FILE, state.purchases)
    meta = {
        "format_version": FORMAT_VERSION,
        **state.params,  # family, common, settings (Recommender.params)
        "implicit_version": version("implicit"),
    }
    (directory / PARAMS_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


class DamagedPackage(ValueError):
    """A package file that exists but cannot be read: truncated, corrupted, or not what
    save_recommender wrote. The message names the file."""


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any failure to read or rebuild path's content into DamagedPackage naming it (a
    missing file stays FileNotFoundError: no model yet)."""
    try:
        yield
    except (FileNotFoundError, DamagedPackage):
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, KeyError, IndexError, TypeError,
            OSError) as exc:  # fmt: skip
        raise DamagedPackage(
            f"the model file {path} is truncated or damaged ({type(exc).__name__}: {exc}):"
            " retrain the model (`recomart train`) or restore the file"
        ) from exc


def read_params(directory: str | Path) -> dict[str, Any]:
    """The settings saved in directory's params file, as the recommender's state holds them:
    {family, common, settings} (format 6) or the flat params of formats 3-5 (ValueError for
    another format, DamagedPackage for a file that cannot be read)."""
    path = Path(directory) / PARAMS_FILE
    with _reading(path):
        meta = json.loads(path.read_text())
        found = meta["format_version"]
        if found in families.READ_FLAT:
            params = meta["params"]
        elif found == FORMAT_VERSION:
            params = {key: meta[key] for key in ("family", "common", "settings")}
    if found not in READABLE:
        raise ValueError(
            f"the model in {path.parent} has format {found}, this code reads "
            f"formats {READABLE} (string ids since 3): retrain it (`recomart train`)"
        )
    return params


def save_scorer(scorer: Scorer, path: Path) -> None:
    """One .npz: the factors, the scales, the family, and W dense or as CSR parts."""
    arrays = {**scorer.arrays(), "family": np.array(scorer.family)}
    weights = scorer.item_weights
    if issparse(weights):
        weights = csr_matrix(weights)
        arrays.update(
            weights_data=weights.data,
            weights_indices=weights.indices,
            weights_indptr=weights.indptr,
            weights_shape=np.array(weights.shape),
        )
    elif weights is not None:
        arrays["item_weights"] = weights
    np.savez(path, **arrays)


def load_scorer(directory: Path, params: dict[str, Any]) -> Scorer:
    """The Scorer save_scorer wrote, or a format-3 package's ALS factors."""
    if not (directory / MODEL_FILE).is_file() and (directory / ALS_FILE_V3).is_file():
        path = directory / ALS_FILE_V3
        with _reading(path), np.load(path, allow_pickle=False) as als:
            return Scorer(
                "als", als["user_factors"], als["item_factors"],
                regularization=float(params["regularization"]),
            )  # fmt: skip
    path = directory / MODEL_FILE
    with _reading(path), np.load(path, allow_pickle=False) as saved:
        weights = None
        if "item_weights" in saved.files:
            weights = saved["item_weights"]
        elif "weights_data" in saved.files:
            weights = csr_matrix(
                (saved["weights_data"], saved["weights_indices"], saved["weights_indptr"]),
                shape=tuple(saved["weights_shape"]),
            )
        return Scorer(
            str(saved["family"]),
            saved["user_factors"],
            saved["item_factors"],
            weights,
            factor_scale=float(saved["factor_scale"]),
            regularization=float(saved["regularization"]),
        )


def save_repeats(
    excluded: csr_matrix, repeats: csr_matrix, path: Path, purchases: csr_matrix | None = None
) -> None:
    """One .npz: the excluded pairs' CSR structure (their values are all True), the repeat
    scores' and the last purchases' (seconds) CSR parts, all users x items."""
    excluded, repeats = csr_matrix(excluded), csr_matrix(repeats)
    bought = {}
    if purchases is not None:
        purchases = csr_matrix(purchases)
        bought = {
            "purchase_indptr": purchases.indptr,
            "purchase_indices": purchases.indices,
            "purchase_data": purchases.data,
        }
    np.savez(
        path,
        **bought,
        shape=np.array(excluded.shape),
        excluded_indptr=excluded.indptr,
        excluded_indices=excluded.indices,
        repeat_indptr=repeats.indptr,
        repeat_indices=repeats.indices,
        repeat_data=repeats.data,
    )


def load_repeats(path: Path) -> tuple[csr_matrix | None, ...]:
    """(excluded, repeats, purchases) as save_repeats wrote them; None for what a package
    lacks (no file before format 5: the recommender then excludes what it excluded then; no
    purchases before the rules: nothing is known to be bought)."""
    if not path.is_file():
        return None, None, None
    with _reading(path), np.load(path, allow_pickle=False) as saved:
        shape = tuple(saved["shape"])
        indices = saved["excluded_indices"]
        excluded = csr_matrix(
            (np.ones(len(indices), dtype=bool), indices, saved["excluded_indptr"]), shape=shape
        )
        repeats = csr_matrix(
            (saved["repeat_data"], saved["repeat_indices"], saved["repeat_indptr"]), shape=shape
        )
        purchases = None
        if "purchase_data" in saved.files:
            purchases = csr_matrix(
                (saved["purchase_data"], saved["purchase_indices"], saved["purchase_indptr"]),
                shape=shape,
            )
    return excluded, repeats, purchases


def load_recommender(directory: str | Path) -> Recommender:
    """The recommender save_recommender wrote (formats READABLE; older ones: retrain). A
    package without repeat settings (format 3 or 4) loads with the defaults: nothing
    repeatable, every item the user had excluded, repeat_weight 0."""
    directory = Path(directory)
    params = read_params(directory)
    scorer = load_scorer(directory, params)
    with _reading(directory / IDS_FILE), np.load(directory / IDS_FILE, allow_pickle=False) as ids:
        arrays = {name: ids[name] for name in ids.files}
    with _reading(directory / USER_ITEMS_FILE):
        user_items = csr_matrix(load_npz(directory / USER_ITEMS_FILE))
    excluded, repeats, purchases = load_repeats(directory / REPEATS_FILE)
    return families.load_state(
        RecommenderState(scorer, user_items, arrays, params, excluded, repeats, purchases)
    )


# ---------------------------------------------------------------------------- the whole package
def save(
    model: Recommender,
    models_dir: str | Path,
    run: dict[str, Any],
    items: pd.DataFrame | None = None,
) -> Path:
    """Save a candidate package into <models_dir>/.champion.candidate (whole, or not at all) and
    return its directory.

    items: the item attributes (item_id as codes of the model's vocabulary, title, category,
    price), saved as ITEMS_FILE keyed by the shop's item ids: serving shows them without opening
    the warehouse. run: what RUN_FILE records (run_id, holdout_cutoff, ...).
    """
    staging = Path(models_dir) / CANDIDATE_DIR
    shutil.rmtree(staging, ignore_errors=True)
    save_recommender(model, staging)
    if items is not None:
        shop_items(model, items).to_parquet(staging / ITEMS_FILE, index=False)
    (staging / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
    return staging


def shop_items(model: Recommender, items: pd.DataFrame) -> pd.DataFrame:
    """Item attributes keyed by codes of the model's vocabulary, re-keyed by the shop's ids."""
    return items.assign(**{ITEM: model.items.decode(items[ITEM])})


def install(staging: str | Path, models_dir: str | Path) -> Path:
    """Make a saved candidate the local champion copy <models_dir>/champion (what `recomart
    recommend` loads): the old copy is renamed aside, the candidate renamed into place; a copy
    under a legacy name (LEGACY_DIRS) is removed."""
    models_dir = Path(models_dir)
    target, old = models_dir / MODEL_DIR, models_dir / OLD_DIR
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    Path(staging).rename(target)
    shutil.rmtree(old, ignore_errors=True)
    for legacy in LEGACY_DIRS:
        shutil.rmtree(models_dir / legacy, ignore_errors=True)
    return target


def discard(staging: str | Path) -> None:
    """Remove a candidate that was not promoted."""
    shutil.rmtree(staging, ignore_errors=True)


def local_dir(models_dir: str | Path) -> Path:
    """The champion's local copy under paths.models: <models_dir>/champion, or the copy a home
    trained before that name keeps (<models_dir>/als) while no champion folder exists."""
    current = Path(models_dir) / MODEL_DIR
    if current.exists():
        return current
    for legacy in LEGACY_DIRS:
        if (Path(models_dir) / legacy).is_dir():
            return Path(models_dir) / legacy
    return current


def load_local(models_dir: str | Path) -> Recommender:
    """The recommender of the champion's local copy (FileNotFoundError before any promotion)."""
    return load_recommender(local_dir(models_dir))


def read_items(directory: str | Path) -> pd.DataFrame | None:
    """The package's item attributes (item_id as the shop's id, title, category, price), or None
    for a package saved without them."""
    path = Path(directory) / ITEMS_FILE
    if not path.is_file():
        return None
    with _reading(path):
        return pd.read_parquet(path)


def read_run(directory: str | Path) -> dict[str, Any]:
    """The package's RUN_FILE ({} when absent)."""
    path = Path(directory) / RUN_FILE
    if not path.is_file():
        return {}
    with _reading(path):
        return json.loads(path.read_text())


def pyfunc_package_dir(pyfunc_root: str | Path) -> Path:
    """The package inside a downloaded MLflow pyfunc model (its MLmodel names the artifact)."""
    root = Path(pyfunc_root)
    mlmodel = yaml.safe_load((root / "MLmodel").read_text())
    artifacts = mlmodel["flavors"]["python_function"].get("artifacts", {})
    return root / artifacts[PYFUNC_ARTIFACT]["path"]
