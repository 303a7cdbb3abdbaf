"""Imports point one way: each top-level folder is a floor, and a folder imports only folders of a
lower floor. The floors are the table between the `layers` markers of the README ("Where things
are"): written once, read here.

`python -m tests.test_layers` prints the import graph between folders, highest floor first.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- layers:start", "<!-- layers:end -->"


def floors(readme: str) -> dict[str, int | None]:
    """The README's layer table: folder -> floor (None for a folder apart from the floors)."""
    block = readme[readme.index(START) : readme.index(END)]
    table = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or not re.fullmatch(r"\d+|-", cells[0]):
            continue  # the marker, the header and its rule
        table[cells[1].strip("`").rstrip("/")] = None if cells[0] == "-" else int(cells[0])
    return table


FLOORS = floors((ROOT / "README.md").read_text())
PACKAGES = tuple(FLOORS)


def group(module: str) -> str:
    """The folder of a module: its top-level package."""
    return module.split(".")[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "target" in path.parts or "models" in path.relative_to(ROOT).parts[1:2]:
                continue  # dbt's build output and dbt models are not Python modules of ours
            found[module_name(path)] = path
    return found


def imports(path: Path, module: str, known: set[str]) -> set[str]:
    """Our modules that `module` imports, anywhere in its body (inside functions too)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from package import module` imports the module; `from module import name`, it
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and not (module + ".").startswith(name + "."):  # not itself or its parents
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: imports(path, name, set(modules)) for name, path in modules.items()}


def against_layers(edges: dict[str, set[str]]) -> list[str]:
    """Every import in edges from one folder to another that is not on a lower floor, and every
    import to or from a folder apart from the floors."""
    wrong = []
    for module, targets in edges.items():
        mine = group(module)
        for target in targets:
            theirs = group(target)
            if theirs == mine:
                continue
            low, high = FLOORS.get(theirs), FLOORS.get(mine)
            if low is None or high is None or low >= high:
                wrong.append(f"{module} ({mine}, floor {high}) -> {target} ({theirs}, floor {low})")
    return sorted(wrong)


def cycles(edges: dict[str, set[str]]) -> list[str]:
    """Every import cycle a depth-first walk of edges meets, as "a -> b -> a"."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    found = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_no_module_imports_a_layer_above_it():
    wrong = against_layers(graph())
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(found)


def test_every_package_folder_is_in_the_table():
    """A new top-level package cannot slip past the rule: every folder of ours with Python in it
    is a row of the table, and every row is a folder."""
    skip = {"tests", "notebooks", "docs", "examples", "data", "reports", "logs"}
    folders = {
        path.parent.name
        for path in ROOT.glob("*/*.py")
        if not path.parent.name.startswith(".") and path.parent.name not in skip
    }
    assert folders == set(FLOORS), (
        f"in the code only: {folders - set(FLOORS)}; in the table only: {set(FLOORS) - folders}"
    )
    assert sorted(f for f in FLOORS.values() if f is not None) == list(range(len(FLOORS) - 1))


def test_the_table_reads_as_the_data_flow():
    stages = [
        f
        for f, _ in sorted(((f, n) for f, n in FLOORS.items() if n is not None), key=lambda x: x[1])
    ]
    assert stages == [
        "recomart_core", "dlt_pipelines", "dbt_project", "soda_checks",
        "feature_store", "models_ml", "serving", "recomart",
    ]  # fmt: skip


def test_the_checkers_catch_a_wrong_import_and_a_cycle():
    """The checkers themselves, on a made-up graph: each wrong edge is reported, the right ones
    are not."""
    edges = {
        "dlt_pipelines.common": {"recomart_core.config", "recomart.pipeline"},  # a stage -> top
        "soda_checks.gate": {"feature_store.store", "dbt_project.build"},  # up; down is fine
        "recomart_core.config": {"models_ml.train"},  # the ground -> a stage
        "models_ml.train": {"serving.app", "feature_store.store"},  # train -> serve: up
        "serving.app": {"models_ml.package"},  # fine
        "recomart.cli": {"recomart.pipeline", "serving.app", "recomart_core.config"},  # fine
        "orchestration.airflow_dag": {"recomart.cli"},  # apart: imports nothing of ours
    }
    assert against_layers(edges) == [
        "dlt_pipelines.common (dlt_pipelines, floor 1) -> recomart.pipeline (recomart, floor 7)",
        "models_ml.train (models_ml, floor 5) -> serving.app (serving, floor 6)",
        "orchestration.airflow_dag (orchestration, floor None) -> recomart.cli (recomart, floor 7)",
        "recomart_core.config (recomart_core, floor 0) -> models_ml.train (models_ml, floor 5)",
        "soda_checks.gate (soda_checks, floor 3) -> feature_store.store (feature_store, floor 4)",
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a"]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_importing_every_module_changes_nothing_global():
    """No import-time side effects: the environment is the same after importing all of ours."""
    modules = sorted(m for m in our_modules() if not m.startswith("orchestration"))
    script = (
        "import importlib, os, sys\n"
        "import sklearn, threadpoolctl  # third-party: they set KMP_DUPLICATE_LIB_OK themselves\n"
        "before = dict(os.environ)\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "keys = set(before) | set(os.environ)\n"
        "changed = {k for k in keys if before.get(k) != os.environ.get(k)}\n"
        "print(sorted(changed))\n"
    )
    clean = {k: v for k, v in os.environ.items() if k != "DLT_PROJECT_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"importing changed the environment: {out.stdout}"


def draw() -> str:
    """The import graph between folders, one line per folder, highest floor first, each with the
    folders it imports and how many import lines point there."""
    between: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for module, targets in graph().items():
        for target in targets:
            if group(target) != group(module):
                between[group(module)][group(target)] += 1
    rank = {f: -1 if n is None else n for f, n in FLOORS.items()}
    lines = []
    for folder in sorted(FLOORS, key=lambda f: -rank[f]):
        out = sorted(between[folder].items(), key=lambda t: -rank.get(t[0], -1))
        lines.append(f"{rank[folder]:>2} {folder:14} -> " + ", ".join(f"{t} {n}" for t, n in out))
    return "\n".join(lines)


if __name__ == "__main__":
    print(draw())
