"""The gate's report files and renderers.

Each run is appended to `<reports>/data_quality_report.json`, a JSON object {"runs": [...]},
oldest first, keeping the last MAX_RUNS runs; `<reports>/data_quality_report.md` beside it holds
the last run as a short human-readable summary (render_markdown), and render_table gives the
same summary as the plain-text table printed at the end of `recomart quality`. problems gives
the lines of a failed gate's error.
"""

from __future__ import annotations

import json
from pathlib import Path

REPORT_NAME = "data_quality_report.json"
SUMMARY_NAME = "data_quality_report.md"
MAX_RUNS = 100


def append_report(path: Path, entry: dict) -> None:
    """Append `entry` to the {"runs": [...]} report at `path`, keeping the last MAX_RUNS."""
    runs = [*_read_runs(path)[-(MAX_RUNS - 1) :], entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"runs": runs}, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def write_summary(path: Path, entry: dict) -> None:
    """Write the run's markdown summary to `path` (replacing the previous run's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(entry))
    tmp.replace(path)


def render_table(entry: dict) -> str:
    """The run as a plain-text table: one line per dataset, then every check that did not pass."""
    rows = [
        (name, len(d["checks"]), d["passed"], d["warned"], d["failed"], d["errored"], d["score"])
        for name, d in entry["datasets"].items()
    ]
    rows.append(
        ("overall", sum(r[1] for r in rows), entry["passed"], entry["warned"], entry["failed"],
         entry["errored"], entry["overall_score"])
    )  # fmt: skip
    width = max(len(r[0]) for r in rows)
    header = f"{'dataset':<{width}}  checks  passed  warned  failed  errored  score"
    lines = ["", f"Data quality gate {_verdict(entry)} ({entry['run_at']})", header]
    lines.append("-" * len(header))
    for name, *counts, value in rows:
        if name == "overall":
            lines.append("-" * len(header))
        numbers = "".join(f"{n:>{w}}" for n, w in zip(counts, (6, 8, 8, 8, 9), strict=True))
        lines.append(f"{name:<{width}}  {numbers}{value:>7.1f}")
    for dataset, check in _not_passed(entry):
        lines.append(f"  {check['outcome'].upper():<8} {dataset}: {label(check)} = "
                     f"{short(check)} ({_limits(check)})")  # fmt: skip
    for dataset, summary in entry["datasets"].items():
        lines += [f"  ERROR    {dataset}: {first_error_line(e)}" for e in summary["errors"]]
    return "\n".join(lines) + "\n"


def render_markdown(entry: dict) -> str:
    """The run as a short markdown page: verdict, load ids, scores per dataset, checks to read."""
    loads = "; ".join(
        f"{name}: {ids['loads']} loads, latest {ids['latest'][-1] if ids['latest'] else '-'}"
        for name, ids in entry.get("load_ids", {}).items()
    )
    lines = [
        "# Data quality report",
        "",
        f"- Run at: {entry['run_at']} ({entry['duration_seconds']} s)",
        f"- Warehouse checked: `{entry['warehouse']}`",
        f"- Loads: {loads or 'none recorded'}",
        f"- Gate: **{_verdict(entry)}**, overall score **{entry['overall_score']}** / 100",
        "- Score: 100 x (passed + 0.5 x warned) / (passed + warned + failed + errored)",
        "",
        "| dataset | contract | checks | passed | warned | failed | errored | score |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, d in entry["datasets"].items():
        lines.append(
            f"| {name} | `{d['contract']}` | {len(d['checks'])} | {d['passed']} | {d['warned']}"
            f" | {d['failed']} | {d['errored']} | {d['score']} |"
        )
    problems = _not_passed(entry)
    errors = [(n, e) for n, d in entry["datasets"].items() for e in d["errors"]]
    if problems or errors:
        lines += ["", "## Checks that did not pass", ""]
        lines += [
            "| outcome | dataset | check | column | value | thresholds |",
            "|---|---|---|---|--:|---|",
        ]
        lines += [
            f"| {c['outcome']} | {n} | {c['name']} | {c['column'] or ''} | {short(c)} |"
            f" {_limits(c)} |"
            for n, c in problems
        ]
        lines += [f"| error | {n} | contract | | | {first_error_line(e)} |" for n, e in errors]
    else:
        lines += ["", "Every check passed."]
    lines += ["", f"Every check, with its metric values: `{REPORT_NAME}` (the last entry).", ""]
    return "\n".join(lines)


def problems(summary: dict) -> list[str]:
    """One line per contract error and per failed or errored check of a dataset's summary."""
    found = [f"contract error: {first_error_line(error)}" for error in summary["errors"]]
    for check in summary["checks"]:
        if check["outcome"] == "failed":
            found.append(f"{label(check)} failed (value {short(check)})")
        elif check["outcome"] == "errored":
            found.append(f"{label(check)} errored (not evaluated)")
    return found


def label(check: dict) -> str:
    """The check's name, with its column in brackets when it has one."""
    return f"{check['name']} [{check['column']}]" if check["column"] else check["name"]


def short(check: dict) -> str:
    """The check's value for a message: floats to 4 significant digits."""
    value = check["value"]
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def first_error_line(error: str) -> str:
    """The database's own error line of a Soda error (which quotes the whole SQL), else line 1."""
    lines = error.strip().splitlines() or [""]
    return next((line for line in lines if " Error: " in line), lines[0])


def _verdict(entry: dict) -> str:
    return "PASSED" if entry["gate_passed"] else "FAILED"


def _not_passed(entry: dict) -> list[tuple[str, dict]]:
    return [
        (name, check)
        for name, summary in entry["datasets"].items()
        for check in summary["checks"]
        if check["outcome"] != "passed"
    ]


def _limits(check: dict) -> str:
    """The check's thresholds in words, e.g. "fail unless <= 5; warn unless = 0"."""
    words = {
        "must_be": "=", "must_not_be": "!=", "must_be_greater_than": ">",
        "must_be_greater_than_or_equal": ">=", "must_be_less_than": "<",
        "must_be_less_than_or_equal": "<=",
    }  # fmt: skip
    parts = []
    for threshold in (check.get("threshold"), check.get("warn_threshold")):
        if not threshold:
            continue
        rules = [f"{words[k]} {v}" for k, v in threshold.items() if k in words]
        if "must_be_between" in threshold:
            rules.append(f"between {threshold['must_be_between']}")
        parts.append(f"{threshold.get('level', 'fail')} unless {' and '.join(rules) or '?'}")
    return "; ".join(parts)


def _read_runs(path: Path) -> list[dict]:
    """The runs already in the report; none if it is missing or not a {"runs": [...]} object."""
    try:
        runs = json.loads(path.read_text()).get("runs")
    except (OSError, ValueError, AttributeError):
        return []
    return runs if isinstance(runs, list) else []
