"""A shop's own data, end to end: each layout of examples/ through ingest, dbt, gate and training.

Each fixture is written in the exact layout of a public dataset (tests/layouts.py: real column
names and value formats, the ugly ones included: SKUs, float customer ids, month-first dates,
half stars, cancellations, millisecond clickstreams, a header-less file) and run with the
example's own configuration, unchanged, through the real stages in a child process.
"""

from __future__ import annotations

import json
import shutil

import duckdb
import pandas as pd
import pytest
from conftest import config_for, run_stage
from layouts import (
    write_movielens_100k,
    write_movielens_latest,
    write_online_retail,
    write_retailrocket,
)

from recomart_core.env import PROJECT_ROOT

pytestmark = pytest.mark.e2e  # the whole pipeline in child processes, per layout

LAYOUTS = {
    "movielens-100k": write_movielens_100k,
    "movielens-latest": write_movielens_latest,
    "online-retail": write_online_retail,
    "retailrocket": write_retailrocket,
}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One layout through `recomart demo` (what `make demo` runs) with its example config:
    ingest, transform, quality, the model search on validation folds, and training the choice."""
    name = request.param
    home = tmp_path_factory.mktemp(name)
    written = LAYOUTS[name](home / "data" / name)
    config_file = home / "recomart.toml"
    shutil.copyfile(PROJECT_ROOT / "examples" / name / "recomart.toml", config_file)
    cfg = config_for(home, config_file)
    run_stage(home, config_file, "demo")
    return {"name": name, "home": home, "cfg": cfg, "written": written, "config": config_file}


def _one(cfg, sql: str) -> tuple:
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        return con.execute(sql).fetchone()


def _reasons(cfg, table: str, column: str) -> dict[str, int]:
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        rows = con.execute(f"select {column}, count(*) from {table} group by 1").fetchall()
    return dict(rows)


def test_every_row_in_is_clean_quarantined_or_rejected(shop: dict) -> None:
    cfg, written = shop["cfg"], shop["written"]
    rows_in, errors = _one(cfg, "select sum(rows), count(error) from raw_interactions.source_files")
    counts = _one(
        cfg,
        "select (select count(*) from marts.interactions),"
        " (select count(*) from raw_interactions.interactions_quarantine),"
        " (select count(*) from marts.rejected_interactions),"
        " (select count(*) from raw_interactions.interactions)",
    )
    clean, quarantined, rejected, raw = counts
    assert errors == 0
    assert rows_in == written["rows"]
    assert rows_in == clean + quarantined + rejected
    assert raw == clean + rejected
    assert clean > 0.9 * (rows_in - written.get("guest_rows", 0))


def test_the_gate_passes_on_clean_data(shop: dict) -> None:
    report = json.loads((shop["cfg"].paths.reports / "data_quality_report.json").read_text())
    last = report["runs"][-1]
    assert last["gate_passed"], last
    assert last["failed"] == 0 and last["errored"] == 0


def test_the_selected_model_beats_popularity_on_enough_scored_users(shop: dict) -> None:
    """On the pipeline's own time-based (or leave-last-n) test period, never seen by tuning."""
    metrics = json.loads((shop["cfg"].paths.reports / "train_metrics.json").read_text())
    tuning = json.loads((shop["cfg"].paths.reports / "tuning.json").read_text())
    assert metrics["family"] == tuning["best"]["family"]
    assert tuning["holdout_cutoff"] == metrics["holdout_cutoff"]
    assert len(tuning["folds"]) >= 2 and len(tuning["best_by_family"]) == 5
    k = metrics["k"]
    als, popular = metrics["model"][f"ndcg_at_{k}"], metrics["popularity"][f"ndcg_at_{k}"]
    assert als > popular, (als, popular)
    assert metrics["n_eval_users"] >= 50
    assert metrics["promotion"]["promote"], metrics["promotion"]
    example = PROJECT_ROOT / "examples" / shop["name"] / "recomart.toml"
    assert shop["config"].read_text() == example.read_text()  # the choice is not written back


def test_layout_specific_values_survive(shop: dict) -> None:
    """What each layout's ugly values must become (each failed on the seed's main)."""
    cfg, written, name = shop["cfg"], shop["written"], shop["name"]
    rejected = _reasons(cfg, "marts.rejected_interactions", "rejection_reason")
    quarantined = _reasons(cfg, "raw_interactions.interactions_quarantine", "reason")
    if name == "movielens-100k":
        # header-less: lines number from 1, and dbt's tests accept it
        assert _one(cfg, "select min(source_line) from raw_interactions.interactions") == (1,)
        assert quarantined == {} and rejected == {}
    if name == "movielens-latest":
        # half stars are on the [ratings] scale; movies.csv is the catalog, its first genre the
        # category; every rated movie is known to it
        assert rejected == {} and quarantined == {}
        assert _one(cfg, "select count(*) from marts.interactions where rating = 0.5") == (
            written["half_star_min_ratings"],
        )
        assert _one(cfg, "select count(*) from marts.item_features") == (written["movies"],)
        categories = _one(
            cfg, "select count(*) filter (where category = 'action') from marts.item_features"
        )
        assert categories[0] > 0
    if name == "online-retail":
        # SKUs stay text, float customer ids lose their .0, guest lines (a quarter, as in the
        # published file) are quarantined as guests, not defects, cancellations are negative
        # feedback
        assert quarantined == {"guest (no user_id)": written["guest_rows"]}
        users = _one(cfg, "select count(*) from marts.interactions where user_id like '%.0'")
        assert users == (0,)
        skus = _one(
            cfg,
            "select count(distinct item_id) filter (where regexp_matches(item_id, '[A-Z]$'))"
            " from marts.interactions",
        )
        assert skus[0] > 0
        returns = _one(cfg, "select count(*) from marts.interactions where event_type = 'return'")
        lines = pd.read_csv(written["files"]["transactions"], dtype=str)
        cancelled = lines[lines["InvoiceNo"].str.startswith("C")]
        # one return event per cancelled product and invoice (a product listed twice in one
        # invoice is one event: dbt keeps one row per user, item, event type and time)
        assert returns == (len(cancelled.drop_duplicates(["InvoiceNo", "StockCode"])),)
        assert len(cancelled) == written["cancellation_rows"]
        # postage lines are not products: rejected as such, never an item
        assert rejected.get("not a product") == written["postage_rows"]
        assert _one(cfg, "select count(*) from marts.item_features where item_id = 'POST'") == (0,)
    if name == "retailrocket":
        # event names mapped to ours, no ratings (implicit feedback), no catalog
        events = _reasons(cfg, "marts.interactions", "event_type")
        assert events == {
            "view": written["events"]["view"],
            "add_to_cart": written["events"]["addtocart"],
            "purchase": written["events"]["transaction"],
        }
        assert _one(cfg, "select count(rating) from marts.interactions") == (0,)
