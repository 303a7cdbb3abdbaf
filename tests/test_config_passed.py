"""Configuration is passed, not fetched: `config.load()` is called at the top (the `recomart`
command, the benchmarks, a notebook, the tests), and every stage below it receives its settings.

Every module of the floors below `recomart/` (the README's layer table, read by test_layers) is
parsed with ast; a call to recomart_core.config.load, however it was imported, fails the test,
except in recomart_core/config.py itself and in a module's `if __name__ == "__main__":` block (a
script's own top, like the command).
"""

from __future__ import annotations

import ast

import pytest
from test_layers import FLOORS, ROOT, group, our_modules

from feature_store import FeatureStore

CONFIG = "recomart_core.config"
HOME = CONFIG  # where load() is defined: it may call itself
TOP = "recomart"


def _is_main_guard(node: ast.AST) -> bool:
    """`if __name__ == "__main__":`"""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and any(
            isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators
        )
    )


def config_loads(source: str) -> list[int]:
    """The lines of `source` that call recomart_core.config.load: `config.load(...)` after
    `from recomart_core import config [as x]`, `recomart_core.config.load(...)`, or `load(...)`
    after `from recomart_core.config import load [as x]`; outside `__main__` blocks."""
    tree = ast.parse(source)
    modules = {"recomart_core.config"}  # dotted names that are the config module
    functions = set()  # bare names that are its load
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "recomart_core":
            modules |= {a.asname or a.name for a in node.names if a.name == "config"}
        elif isinstance(node, ast.ImportFrom) and node.module == CONFIG:
            functions |= {a.asname or a.name for a in node.names if a.name == "load"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == CONFIG and a.asname}
    guarded = {
        id(inner) for node in ast.walk(tree) if _is_main_guard(node) for inner in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in guarded:
            continue
        func = node.func
        bare = isinstance(func, ast.Name) and func.id in functions
        dotted = (
            isinstance(func, ast.Attribute)
            and func.attr == "load"
            and ast.unparse(func.value) in modules
        )
        if bare or dotted:
            found.append(node.lineno)
    return sorted(found)


def test_no_stage_reads_the_configuration_itself():
    below_top = [f for f, floor in FLOORS.items() if floor is not None and f != TOP]
    assert "recomart_core" in below_top and "serving" in below_top and len(below_top) == 7
    modules = {m: p for m, p in our_modules().items() if group(m) in below_top and m != HOME}
    assert "models_ml.train" in modules and "soda_checks.gate" in modules  # the walk saw them
    wrong = [
        f"{modules[name].relative_to(ROOT)}:{line} calls config.load()"
        for name in sorted(modules)
        for line in config_loads(modules[name].read_text())
    ]
    assert not wrong, "stages fetch their configuration instead of receiving it:\n" + "\n".join(
        wrong
    )


def test_the_finder_sees_every_spelling_and_skips_main_blocks():
    source = "\n".join(
        [
            "from recomart_core import config",  # 1
            "from recomart_core import config as c",  # 2
            "from recomart_core.config import load, load as fetch",  # 3
            "import recomart_core.config",  # 4
            "def f(cfg=None):",  # 5
            "    cfg = cfg or config.load()",  # 6
            "    c.load('x.toml')",  # 7
            "    load()",  # 8
            "    fetch()",  # 9
            "    recomart_core.config.load()",  # 10
            "    json.load(fp)",  # 11: another load
            "    config.load_other()",  # 12: another function
            "if __name__ == '__main__':",  # 13
            "    print(f(config.load()))",  # 14: a script's top
        ]
    )
    assert config_loads(source) == [6, 7, 8, 9, 10]


def test_a_feature_store_without_cfg_or_paths_is_refused():
    """FeatureStore() no longer reads the configuration behind its caller's back."""
    with pytest.raises(TypeError, match="or an explicit warehouse"):
        FeatureStore()
