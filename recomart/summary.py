"""The ten-second summary printed at the end of a run, read from the warehouse and the reports."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import duckdb

from dbt_project import build
from recomart_core import config
from recomart_core import schema as s

# (label, SQL) pairs: every count the summary shows, read in one read-only connection.
RAW_INTERACTIONS = f"{s.RAW_INTERACTIONS_DATASET}.{s.RAW_INTERACTIONS_TABLE}"
RAW_QUARANTINE = f"{s.RAW_INTERACTIONS_DATASET}.{s.RAW_QUARANTINE_TABLE}"
COUNTS = {
    "CSV rows read": "select coalesce(sum(rows), 0) from raw_interactions.source_files",
    "raw interactions": f"select count(*) from {RAW_INTERACTIONS}",
    "quarantined at ingest": f"select count(*) from {RAW_QUARANTINE}",
    "raw products": f"select count(*) from {s.RAW_CATALOG_DATASET}.{s.RAW_PRODUCTS_TABLE}",
    "clean interactions": f"select count(*) from {s.MARTS_SCHEMA}.{s.INTERACTIONS_MART}",
    "rejected by dbt": f"select count(*) from {s.MARTS_SCHEMA}.{s.REJECTED_MART}",
    "user features": f"select count(*) from {s.MARTS_SCHEMA}.{s.USER_FEATURES}",
    "item features": f"select count(*) from {s.MARTS_SCHEMA}.{s.ITEM_FEATURES}",
    "user-item features": f"select count(*) from {s.MARTS_SCHEMA}.{s.USER_ITEM_FEATURES}",
    "recommendations": f"select count(*) from {s.RECOMMENDATIONS_SCHEMA}.{s.USER_RECOMMENDATIONS}",
}
REASONS = {
    "quarantined at ingest": f"select {s.REASON}, count(*) from {RAW_QUARANTINE}"
    " group by 1 order by 2 desc",
    "rejected by dbt": f"select rejection_reason, count(*) from {s.MARTS_SCHEMA}.{s.REJECTED_MART}"
    " group by 1 order by 2 desc",
}


COMBINED = "lines combined into one event"  # shown under "rejected by dbt"
LABEL_WIDTH = 32
# a table or column of the marts not there yet (a stage not run, a build older than the column)
NOT_BUILT = (duckdb.CatalogException, duckdb.BinderException)


def warehouse_counts(warehouse: Path) -> tuple[dict[str, int | None], dict[str, list]]:
    """Row counts per table and the reasons for rejected rows; None where a table is missing."""
    counts: dict[str, int | None] = dict.fromkeys(COUNTS)
    reasons: dict[str, list] = {}
    if not warehouse.exists():
        return counts, reasons
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for label, sql in COUNTS.items():
            with contextlib.suppress(duckdb.CatalogException):  # a stage not run yet
                counts[label] = con.execute(sql).fetchone()[0]
        for label, sql in REASONS.items():
            with contextlib.suppress(duckdb.CatalogException):
                reasons[label] = con.execute(sql).fetchall()
    return counts, reasons


def transform_figures(warehouse: Path) -> tuple[dict | None, dict | None]:
    """(combined lines, repeat behaviour) of the warehouse's marts, by the transform's own SQL
    (dbt_project.build.combined_lines and repeat_behaviour); None where the marts lack them."""
    combined = repeats = None
    if not warehouse.exists():
        return combined, repeats
    with duckdb.connect(str(warehouse), read_only=True) as con:
        with contextlib.suppress(*NOT_BUILT):
            combined = build.combined_lines(con)
        with contextlib.suppress(*NOT_BUILT):
            repeats = build.repeat_behaviour(con)
    return combined, repeats


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f} %"


def repeat_line(repeats: dict) -> str:
    """The data's repeat behaviour (dbt_project.build.repeat_behaviour) in one line: "Repeats:
    30.9 % of users' last events (815 users with 2+ events), 52.6 % of purchases follow a view
    of the item; by event: add_to_cart 17.9 %, purchase 61.0 %, view 24.2 %"."""
    by_event = ", ".join(
        f"{event} {_percent(figures['share'])}"
        for event, figures in repeats["by_event_type"].items()
    )
    return (
        f"Repeats: {_percent(repeats['last_event_repeat_share'])} of users' last events"
        f" ({repeats['users']:,} users with 2+ events),"
        f" {_percent(repeats['purchase_after_view_share'])} of purchases follow a view of the"
        f" item; by event: {by_event or '-'}"
    )


def _read_json(path: Path) -> dict | list | None:
    return json.loads(path.read_text()) if path.exists() else None


def render(cfg: config.Config) -> str:
    """The summary as text."""
    counts, reasons = warehouse_counts(cfg.paths.warehouse)
    combined, repeats = transform_figures(cfg.paths.warehouse)
    lines = ["", "RecoMart run summary", "=" * 20, "Rows"]
    for label, value in counts.items():
        lines.append(f"  {label:<{LABEL_WIDTH}}{'-' if value is None else f'{value:>10,}'}")
        for reason, n in reasons.get(label, []):
            lines.append(f"      {n:>8,}  {reason}")
        if label == "rejected by dbt" and combined and combined["lines"]:
            lines.append(
                f"  {COMBINED:<{LABEL_WIDTH}}{combined['lines']:>10,}  into"
                f" {combined['events']:,} event{'s' * (combined['events'] != 1)} (same transaction)"
            )
    if repeats:
        lines.append(repeat_line(repeats))
    lines += _quality_lines(cfg), *_train_lines(cfg)
    lines += [
        "Where to look next",
        f"  warehouse       {cfg.paths.warehouse}  (duckdb -readonly)",
        "  dbt docs        make docs-serve  (lineage from raw sources to the model)",
        f"  quality report  {cfg.paths.reports / 'data_quality_report.json'}",
        f"  MLflow UI       make mlflow-ui  (store: {cfg.paths.mlflow / 'mlflow.db'})",
        "",
    ]
    return "\n".join(lines)


def _quality_lines(cfg: config.Config) -> str:
    report = _read_json(cfg.paths.reports / "data_quality_report.json")
    if not report:
        return "Quality gate: not run"
    last = report["runs"][-1] if isinstance(report, dict) else report[-1]
    outcome = "PASSED" if last.get("gate_passed") else "FAILED"
    return f"Quality gate: {outcome}, score {last.get('overall_score', '?')}/100"


def _train_lines(cfg: config.Config) -> list[str]:
    metrics = _read_json(cfg.paths.reports / "train_metrics.json")
    if not metrics:
        return ["Model: not trained"]
    k = cfg.settings.train.k
    names = [f"precision_at_{k}", f"recall_at_{k}", f"ndcg_at_{k}"]
    scored = metrics.get("n_eval_users", "?")
    family = metrics.get("family", "als")  # reports written before families were named: ALS
    lines = [f"Model: {family} (holdout: {_holdout_text(metrics)}, {scored} users scored)"]
    evaluation = metrics.get("evaluation") or {}
    if evaluation.get("requested") == "auto":
        lines.append(f"  holdout chosen by auto: {evaluation.get('reason', '')}")
    policy = evaluation.get("repeat_policy")
    if policy:  # [train] repeatable_events: what may come back, what counts as relevant
        lines.append(
            f"  repeat policy: never recommended again: {policy['excluded']};"
            f" repeat_weight {policy['repeat_weight']:g}"
            f" (half-life {policy['repeat_half_life_days']:g} days)"
        )
    lines.append(f"  {'':<18}" + "".join(f"{n:>16}" for n in names))
    for model in ("model", "popularity", "repeat", "recent_popularity"):
        if model in metrics:
            values = metrics[model]
            row = "".join(f"{values.get(n, float('nan')):>16.4f}" for n in names)
            lines.append(f"  {model:<18}{row}")
    promotion = metrics.get("promotion")
    if promotion:
        verdict = "promoted to champion" if promotion.get("promote") else "not promoted"
        lines.append(
            f"  {metrics.get('model_name', 'model')} v{metrics.get('model_version', '?')}:"
            f" {verdict} ({promotion.get('reason', '')})"
        )
    return lines


def _holdout_text(metrics: dict) -> str:
    """'last 30 days from 2026-10-01T00:00:00', 'leave-last-1' (no single cutoff)."""
    evaluation = metrics.get("evaluation")
    if not evaluation:  # a report written before holdout strategies
        return f"time holdout from {metrics.get('holdout_cutoff', '?')}"
    text = evaluation.get("label", evaluation.get("strategy", "?"))
    if evaluation.get("cutoff"):
        text += f" from {evaluation['cutoff']}"
    return text
