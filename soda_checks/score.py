"""The score of a gate run, and its summary per dataset and overall.

Score of a dataset, and overall (over the checks of every dataset together):

    score = 100 * (passed + 0.5 * warned) / (passed + warned + failed + errored)

A warning counts half, a failed or errored check nothing; a contract that could not run at all
scores 0. The gate passes when no check failed or errored and no contract reported an error.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from recomart_core.env import PROJECT_ROOT
from soda_checks.verify import Verified

WARN_WEIGHT = 0.5
COUNTED = ("passed", "warned", "failed", "errored")


def score(counts: dict[str, int]) -> float:
    """100 * (passed + WARN_WEIGHT * warned) / counted checks, rounded to 0.1; 0 when none."""
    total = sum(counts[k] for k in COUNTED)
    if total == 0:
        return 0.0
    return round(100 * (counts["passed"] + WARN_WEIGHT * counts["warned"]) / total, 1)


def dataset_summary(verified: Verified) -> dict:
    """One contract's result: dataset, contract (relative to the project when inside it), the
    count of each COUNTED outcome, score, errors, gate_passed and checks."""
    checks = verified.checks
    counts = {k: sum(c["outcome"] == k for c in checks) for k in COUNTED}
    return {
        "dataset": verified.dataset,
        "contract": _display_path(verified.contract),
        **counts,
        "score": score(counts),
        "errors": verified.errors,
        "gate_passed": not (counts["failed"] or counts["errored"] or verified.errors),
        "checks": checks,
    }


def run_entry(
    datasets: list[dict], warehouse: Path, run_at: datetime, seconds: float, load_ids: dict
) -> dict:
    """The run's entry: run_at, duration_seconds, warehouse, load_ids, the outcome totals,
    overall_score, gate_passed (every dataset passed, and there was at least one) and datasets
    keyed by name."""
    totals = {k: sum(d[k] for d in datasets) for k in COUNTED}
    return {
        "run_at": run_at.isoformat(timespec="seconds"),
        "duration_seconds": round(seconds, 2),
        "warehouse": str(warehouse),
        "load_ids": load_ids,
        **totals,
        "overall_score": score(totals),
        "gate_passed": bool(datasets) and all(d["gate_passed"] for d in datasets),
        "datasets": {d["dataset"]: d for d in datasets},
    }


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
