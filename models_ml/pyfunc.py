"""The recommender as an MLflow pyfunc model: input shop user ids (string), output ranked
recommendations with shop item ids (string).

The model package (models_ml.package) travels as the artifact "recommender". The code travels
too, but only what loading and predicting need: the modules of ours that the entry point
(models_ml/pyfunc_entry.py) imports, directly or not, with their packages' __init__ files
(shipped_modules: the closure computed from the sources' import statements, like
tests/test_layers.py). So `mlflow.pyfunc.load_model(uri)` works wherever the pip requirements are
installed, and a model version holds no data generator, benchmark, feature store or trainer.
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from models_ml import package
from recomart_core.schema import ITEM, USER

CODE_ROOT = Path(__file__).resolve().parent.parent  # holds our top-level packages
ENTRY_POINT = Path(__file__).resolve().parent / "pyfunc_entry.py"
ENTRY_MODULE = "models_ml.pyfunc_entry"
ARTIFACT = package.PYFUNC_ARTIFACT
RANK = "rank"
SCORE = "score"
REQUIREMENTS = ("implicit", "numpy", "scipy", "pandas", "threadpoolctl")


def signature(k: int) -> ModelSignature:
    """Input: user_id (string). Output: user_id (string), rank, item_id (string), score.
    Params: k, exclude_known (true: leave out what [train] repeatable_events excludes)."""
    return ModelSignature(
        inputs=Schema([ColSpec("string", USER)]),
        outputs=Schema(
            [
                ColSpec("string", USER),
                ColSpec("long", RANK),
                ColSpec("string", ITEM),
                ColSpec("float", SCORE),
            ]
        ),
        params=ParamSchema(
            [ParamSpec("k", "long", k), ParamSpec("exclude_known", "boolean", True)]
        ),
    )


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of Recommender.recommend_ids (shop ids in and out)."""

    def load_context(self, context: Any) -> None:
        self.recommender = package.load_recommender(context.artifacts[ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any]
    ) -> pd.DataFrame:
        """DataFrame with user_id -> DataFrame (user_id, rank, item_id, score), rank from 1,
        ids as the shop's strings; unknown users get the cold-start list.

        params k and exclude_known: MLflow fills in the signature's defaults.
        """
        k = int(params["k"])
        users = pd.DataFrame(model_input)[USER].to_numpy(dtype=object)
        item_ids, scores = self.recommender.recommend_ids(
            users, k, exclude_known=bool(params["exclude_known"])
        )
        kept = pd.notna(item_ids.ravel())
        return pd.DataFrame(
            {
                USER: np.repeat(users, k)[kept],
                RANK: np.tile(np.arange(1, k + 1), len(users))[kept],
                ITEM: item_ids.ravel()[kept],
                SCORE: scores.ravel()[kept],
            }
        )


def log_pyfunc(
    model_dir: Path,
    k: int,
    example_user_ids: list[str],
    name: str = "recommender",
    registered_model_name: str | None = None,
) -> tuple[str, str | None]:
    """Log model_dir as a pyfunc model of the active run (and register it under
    registered_model_name); return its model URI and registered version (or None).

    k is the default list length; MLflow runs the model on example_user_ids (shop ids) while
    logging. The code logged is shipped_modules()' files only.
    """
    with tempfile.TemporaryDirectory(prefix="recomart-pyfunc-code-") as tree:
        code = copy_code(shipped_modules(), Path(tree))
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(ENTRY_POINT),
            artifacts={ARTIFACT: str(model_dir)},
            code_paths=[str(path) for path in code],
            signature=signature(k),
            input_example=pd.DataFrame({USER: [str(u) for u in example_user_ids]}),
            pip_requirements=[f"{dist}=={version(dist)}" for dist in REQUIREMENTS],
            registered_model_name=registered_model_name,
        )
    registered = info.registered_model_version
    return info.model_uri, None if registered is None else str(registered)


# ------------------------------------------------------------------------- the code it ships
def our_modules(root: Path = CODE_ROOT) -> dict[str, Path]:
    """{module name: file} of every module in root's top-level packages (folders with an
    __init__.py)."""
    found = {}
    for top in sorted(p for p in root.iterdir() if (p / "__init__.py").is_file()):
        for path in top.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if not all(part.isidentifier() for part in parts):
                continue  # not importable (a dbt target folder, a notebook checkpoint, ...)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_modules(path: Path, module: str, known: set[str]) -> set[str]:
    """The modules of `known` that `module` (its file `path`) imports anywhere in its body,
    functions included: `import a.b`, `from a import b` (module b or a name of a), relative
    imports resolved."""
    package_name = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package_name.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_closure(module: str, modules: dict[str, Path]) -> set[str]:
    """module, every module of ours it imports transitively, and each one's parent packages
    (importing a.b.c runs a/__init__.py and a/b/__init__.py first)."""
    known = set(modules)
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parents = [name.rsplit(".", depth)[0] for depth in range(1, name.count(".") + 1)]
        todo += [p for p in parents if p in known]
        todo += sorted(imported_modules(modules[name], name, known) - seen)
    return seen


def shipped_modules(root: Path = CODE_ROOT) -> dict[str, Path]:
    """{module: file} that a logged model carries: the import closure of the entry point."""
    modules = our_modules(root)
    return {name: modules[name] for name in sorted(import_closure(ENTRY_MODULE, modules))}


def copy_code(modules: dict[str, Path], tree: Path, root: Path = CODE_ROOT) -> list[Path]:
    """Copy the modules' files into tree, keeping their paths below root; return the top-level
    package folders made (what log_model's code_paths takes)."""
    tops = set()
    for path in modules.values():
        relative = path.relative_to(root)
        target = tree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        tops.add(tree / relative.parts[0])
    return sorted(tops)
