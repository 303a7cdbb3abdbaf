"""Imports point one way: core at the bottom, the stages above it, the command line on top.

`python -m tests.test_layers` prints the import graph, one line per package.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("recomart", "dlt_pipelines", "dbt_project", "soda_checks", "models_ml", "orchestration")

# Each group and its rank: a module imports only its own group or groups of a lower rank.
# The demo (generator, embedded catalog API) and the benchmarks are for the top only.
LAYERS = [
    ("recomart.core", 0),
    ("recomart.demo", 1),
    ("dlt_pipelines", 1),
    ("dbt_project", 1),
    ("soda_checks", 1),
    ("recomart.features", 2),
    ("models_ml", 3),
    ("recomart.bench", 5),
    ("recomart", 5),  # cli, pipeline, summary, errors: the top
    ("orchestration", 5),
]
ONLY_FROM_TOP = {"recomart.demo", "recomart.bench"}


def group(module: str) -> str:
    """The layer group of a module: the longest LAYERS prefix."""
    names = [name for name, _ in LAYERS if module == name or module.startswith(name + ".")]
    return max(names, key=len)


RANK = dict(LAYERS)


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
    """Every import in edges that goes up a layer, or into the demo from below the top."""
    wrong = []
    for module, targets in edges.items():
        mine = group(module)
        for target in targets:
            theirs = group(target)
            if theirs == mine:
                continue
            if theirs in ONLY_FROM_TOP and RANK[mine] < RANK["recomart"]:
                wrong.append(f"{module} -> {target} (demo and benchmarks are for the top only)")
            elif RANK[theirs] >= RANK[mine] < RANK["recomart"]:  # the top may use the top
                wrong.append(f"{module} ({mine}) -> {target} ({theirs})")
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


def test_the_checkers_catch_a_wrong_import_and_a_cycle():
    """The checkers themselves, on a made-up graph: each wrong edge is reported, the right ones
    are not."""
    edges = {
        "dlt_pipelines.common": {"recomart.core.config", "recomart.pipeline"},  # a stage -> top
        "dbt_project.build": {"soda_checks.gate"},  # a stage -> a stage beside it
        "recomart.core.config": {"models_ml.train"},  # core -> a stage
        "models_ml.train": {"recomart.features.store", "recomart.demo.datagen"},  # demo below top
        "recomart.cli": {"recomart.pipeline", "recomart.demo.datagen"},  # the top: fine
    }
    assert against_layers(edges) == [
        "dbt_project.build (dbt_project) -> soda_checks.gate (soda_checks)",
        "dlt_pipelines.common (dlt_pipelines) -> recomart.pipeline (recomart)",
        "models_ml.train -> recomart.demo.datagen (demo and benchmarks are for the top only)",
        "recomart.core.config (recomart.core) -> models_ml.train (models_ml)",
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
    """The import graph between layer groups, one line per group (the closing note prints it)."""
    between: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        for target in targets:
            if group(target) != group(module):
                between[group(module)].add(group(target))
    order = sorted(between.keys() | {g for g, _ in LAYERS}, key=lambda g: (-RANK[g], g))
    return "\n".join(f"{g:18} -> {', '.join(sorted(between[g], key=lambda t: -RANK[t]))}"
                     for g in order)  # fmt: skip


if __name__ == "__main__":
    print(draw())
