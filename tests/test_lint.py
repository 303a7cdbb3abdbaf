"""The code passes the project's linters as `make lint` runs them: ruff, and sqlfluff on dbt SQL."""

import subprocess
import sys

from recomart_core.env import PROJECT_ROOT


def _tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", tool, *args], cwd=PROJECT_ROOT, capture_output=True, text=True
    )


def test_ruff_check_passes() -> None:
    proc = _tool("ruff", "check", ".")
    assert proc.returncode == 0, proc.stdout


def test_ruff_format_is_clean() -> None:
    proc = _tool("ruff", "format", "--check", ".")
    assert proc.returncode == 0, proc.stdout


def test_sqlfluff_passes_on_the_dbt_project() -> None:
    proc = _tool("sqlfluff", "lint", "dbt_project")
    assert proc.returncode == 0, proc.stdout[-4000:]
