"""Process environment every stage runs under: telemetry off, dlt pointed at the project's .dlt/."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "SODA_CORE_TELEMETRY_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "true",
}


def prepare() -> None:
    """Set each tool's opt-out switch and dlt's project dir, unless the caller already chose."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
    # dlt reads .dlt/config.toml from its project dir, which defaults to the working directory.
    os.environ.setdefault("DLT_PROJECT_DIR", str(PROJECT_ROOT))
    # MLflow draws a progress bar for every artifact copy; a pipeline log does not want them.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
