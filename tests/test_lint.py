"""The code passes the project's linters: ruff check and ruff format, as `make lint` runs them."""

import subprocess
import sys

from recomart.env import PROJECT_ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=PROJECT_ROOT, capture_output=True, text=True
    )


def test_ruff_check_passes() -> None:
    proc = _ruff("check", ".")
    assert proc.returncode == 0, proc.stdout


def test_ruff_format_is_clean() -> None:
    proc = _ruff("format", "--check", ".")
    assert proc.returncode == 0, proc.stdout
