"""Hostile and careless numbers (issue 26): non-finite values in the data, and settings that
size memory or work without a bound.

Data: a file's "inf", "NaN" or "1e999" types as a double (DuckDB parses them), so such a value
passed ingest, dbt and the gate and, with weight_by = "quantity", made training fail with
"NaN encountered in factors". dbt now rejects the row with a reason naming the column, the
catalog's non-finite price is left out like a missing one, and every numeric column of every
marts contract is checked for finiteness (a row that slips through fails exactly that check).

Settings: every setting that sizes memory or work has an upper bound that recomart.toml's
reader refuses with the key's name; [generator] keys are checked when the file is read; a
parse_memory_limit below 40MB is refused; a number written inf or nan is refused.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from conftest import config_for, not_passed, run_stage, small_config, with_code_under_test
from mlflow.tracking import MlflowClient

from feature_store import FeatureStore
from feature_store.errors import FeatureStoreError
from models_ml import families, tracking
from recomart.demo import datagen
from recomart_core import warehouse as live
from recomart_core.config import SODA_DIR
from recomart_core.env import PROJECT_ROOT
from recomart_core.settings import ConfigError, parse
from soda_checks import gate as quality

# ---------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"serve": {"max_k": 1_000_000_000}}, "[serve] max_k: Input should be less than or equal"),
        ({"serve": {"max_batch": 10**7}}, "[serve] max_batch: Input should be less than or equal"),
        ({"serve": {"max_body_bytes": 10**10}}, "[serve] max_body_bytes: Input should be less"),
        ({"serve": {"limit_concurrency": 10**6}}, "[serve] limit_concurrency: Input should be"),
        ({"serve": {"max_explain_k": 10**4}}, "[serve] max_explain_k: Input should be less"),
        ({"serve": {"body_timeout_seconds": 1e9}}, "[serve] body_timeout_seconds: Input should"),
        ({"serve": {"timeout_keep_alive": 1e9}}, "[serve] timeout_keep_alive: Input should be"),
        ({"serve": {"precompute_max_users": 10**9}}, "[serve] precompute_max_users: Input should"),
        # each within its own bound, together a billion cells of lists at load
        (
            {"serve": {"precompute_max_users": 10_000_000, "max_k": 100}},
            "[serve] precompute_max_users x max_k = 1,000,000,000 cells",
        ),
        ({"train": {"k": 10**6}}, "[train] k: Input should be less than or equal to 1000"),
        # a family's own settings: its table, checked by its model (models_ml.families.check)
        ({"train": {"als": {"factors": 10**6}}}, "[train.als] factors: Input should be less than"),
        ({"train": {"als": {"iterations": 10**8}}}, "[train.als] iterations: Input should be less"),
        ({"train": {"bpr": {"factors": 10**6}}}, "[train.bpr] factors: Input should be less than"),
        ({"train": {"bpr": {"iterations": 10**8}}}, "[train.bpr] iterations: Input should be less"),
        ({"train": {"ease": {"max_items": 10**6}}}, "[train.ease] max_items: Input should be less"),
        ({"train": {"itemknn": {"neighbours": 10**7}}}, "[train.itemknn] neighbours: Input should"),
        # the keys of before the tables name their new place
        ({"train": {"ease_l2": 5.0}}, "moved: set [train.ease] l2"),
        ({"train": {"factors": 8}}, "moved: set [train.als] factors"),
        ({"train": {"plot_max_k": 10**6}}, "[train] plot_max_k: Input should be less than"),
        ({"train": {"tune": {"budget_s": 1e12}}}, "[train.tune] budget_s: Input should be less"),
        ({"train": {"tune": {"folds": 10**4}}}, "[train.tune] folds: Input should be less"),
        ({"train": {"tune": {"n_trials": 10**7}}}, "[train.tune] n_trials: Input should be less"),
        ({"train": {"tune": {"max_users": 10**10}}}, "[train.tune] max_users: Input should be"),
        (
            {"train": {"tune": {"repeat_weights": [0.5] * 1000}}},
            "[train.tune] repeat_weights: give at most 100 weights",
        ),
        (
            {"train": {"evaluation": {"bootstrap_samples": 10**9}}},
            "[train.evaluation] bootstrap_samples: Input should be less than or equal to 100000",
        ),
        (
            {"train": {"evaluation": {"max_eval_users": 10**10}}},
            "[train.evaluation] max_eval_users: Input should be less",
        ),
        (
            {"train": {"cold_start": {"price_bands": 10**7}}},
            "[train.cold_start] price_bands: Input should be less",
        ),
        ({"generator": {"n_interactions": 10**10}}, "[generator] n_interactions: Input should"),
        ({"generator": {"n_users": 10**9}}, "[generator] n_users: Input should be less"),
        # inf and nan are TOML numbers; no setting takes one
        ({"ratings": {"max": float("inf")}}, "[ratings] max: Input should be a finite number"),
        ({"train": {"alpha": float("nan")}}, "[train] alpha: Input should be a finite number"),
    ],
)
def test_a_setting_past_its_bound_is_refused_naming_its_key(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        families.check(parse(raw).train)  # as a command starts: parse, then the families
    assert expected in str(caught.value)


def test_the_bounds_leave_real_use_alone() -> None:
    """Values a real shop uses, near the bounds, are accepted (the bounds are not too tight)."""
    settings = parse(
        {
            "serve": {"max_k": 1000, "precompute_max_users": 100_000, "max_batch": 10_000},
            "train": {
                "k": 100,
                "als": {"factors": 512, "iterations": 100},
                "ease": {"max_items": 50_000},
            },
            "generator": {"n_interactions": 10_000_000, "n_users": 500_000, "n_items": 1_000_000},
        }
    )
    families.check(settings.train)
    assert settings.serve.max_k == 1000
    assert settings.generator == {
        "n_interactions": 10_000_000,
        "n_users": 500_000,
        "n_items": 1_000_000,
    }  # fmt: skip  (the table as written: the generator's own defaults fill the rest)


def test_a_generator_typo_is_named_with_the_valid_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"generator": {"n_userz": 500}})
    message = str(caught.value)
    assert "[generator] has no setting 'n_userz' (a typo?" in message
    assert "seed, n_users, n_items, n_interactions, start, days, defect_rate" in message


def test_generator_values_are_checked_when_read() -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"generator": {"n_users": "many", "start": "2026-13-01", "defect_rate": 0.9}})
    message = str(caught.value)
    assert "[generator] n_users: Input should be a valid integer" in message
    assert "start: a day such as \"2026-05-01\", got '2026-13-01'" in message
    assert "defect_rate: Input should be less than or equal to 0.5" in message


def test_the_project_configs_are_within_the_bounds() -> None:
    """recomart.toml and every example configuration still read (their values are real use)."""
    files = [PROJECT_ROOT / "recomart.toml", *sorted(PROJECT_ROOT.glob("examples/*/recomart.toml"))]
    for path in files:
        families.check(parse(tomllib.loads(path.read_text()), str(path)).train)
    assert len(files) > 1


def test_generator_sizes_from_the_command_line_are_bounded_too(tmp_path: Path) -> None:
    """`recomart generate --users 1000000000` joins the file's [generator]: checked the same."""
    cfg_file = small_config(tmp_path)
    env = {**os.environ, "RECOMART_HOME": str(tmp_path), "RECOMART_CONFIG": str(cfg_file)}
    proc = subprocess.run(
        [sys.executable, "-m", "recomart.cli", "generate", "--users", "1000000000"],
        env=with_code_under_test(env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert (
        "generate failed: [generator] with the command line's sizes: n_users: Input should be"
        " less than or equal to 10000000"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "generated").exists()


@pytest.mark.parametrize("size", ["0GB", "0.01GB", "39MB", "1000KB", "32MiB"])
def test_a_parse_memory_limit_below_40mb_is_refused(size: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"ingest": {"interactions": {"parse_memory_limit": size}}})
    assert (
        f"[ingest.interactions] parse_memory_limit: at least 40MB (below it DuckDB runs out of"
        f" memory parsing a file), got '{size}'"
    ) in str(caught.value)


@pytest.mark.parametrize("size", ["40MB", "64MiB", "0.5GB", "2GB"])
def test_a_parse_memory_limit_of_40mb_or_more_is_accepted(size: str) -> None:
    parsed = parse({"ingest": {"interactions": {"parse_memory_limit": size}}})
    assert parsed.ingest.interactions.parse_memory_limit == size


# ---------------------------------------------------------------------------------------------
# Contracts: finiteness of every numeric column

FLOATING = ("double", "float", "real", "decimal", "numeric")


def _finiteness_checked(contract: dict) -> set[str]:
    """The columns of a contract whose NaN and infinities some failed_rows check fails on."""
    expressions = [
        check["failed_rows"].get("expression", "")
        for checks in [contract.get("checks") or []]
        + [c.get("checks") or [] for c in contract["columns"]]
        for check in checks
        if isinstance(check, dict) and "failed_rows" in check
    ]
    text = " ".join(expressions)
    return {
        column["name"]
        for column in contract["columns"]
        if re.search(rf"isnan\({column['name']}\)", text)
        and re.search(rf"isinf\({column['name']}\)", text)
    }


@pytest.mark.parametrize("path", sorted(SODA_DIR.glob("marts_*.yml")), ids=lambda p: p.name)
def test_every_numeric_column_of_a_mart_is_checked_for_finiteness(path: Path) -> None:
    contract = yaml.safe_load(path.read_text())
    numeric = {
        c["name"] for c in contract["columns"] if str(c.get("data_type", "")).startswith(FLOATING)
    }
    assert numeric  # every mart has numbers
    assert numeric - _finiteness_checked(contract) == set()


def test_the_csv_reader_types_inf_nan_and_overflow_as_non_finite() -> None:
    """What the ingest's try_cast makes of such text: the premise of the dbt rule."""
    texts = ["inf", "-inf", "Infinity", "NaN", "nan", "1e999", " inf "]
    with duckdb.connect() as con:
        typed = con.execute(
            "select isfinite(try_cast(t as double)) from unnest($texts) as u(t)", {"texts": texts}
        ).fetchall()
    assert typed == [(False,)] * len(texts)


# ---------------------------------------------------------------------------------------------
# The real stack: a file with non-finite numbers, ingested, transformed, gated and trained on

# line of the data file (header = line 1) -> (column, text, the reason dbt gives)
HOSTILE = {
    2: ("quantity", "inf", "quantity is not a finite number"),
    3: ("quantity", "NaN", "quantity is not a finite number"),
    4: ("quantity", "1e999", "quantity is not a finite number"),
    5: ("quantity", "-inf", "quantity is not a finite number"),  # not a return: not a number
    6: ("unit_price", "NaN", "unit_price is not a finite number"),
    7: ("value", "Infinity", "value is not a finite number"),
    8: ("rating", "inf", "rating is not a finite number"),
}
OVERFLOW_LINE = 9  # quantity 1e300 x unit price 1e300: the value overflows


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small home whose interaction file (12,000 generated rows, weight_by = "quantity") holds
    the HOSTILE values: ingest, transform, the gate and training run on it through the real
    stages (each must exit 0)."""
    home = tmp_path_factory.mktemp("hostile_numbers")
    cfg_file = small_config(home)
    text = cfg_file.read_text()
    cfg_file.write_text(text.replace('weight_by = "events"', 'weight_by = "quantity"'))
    cfg = config_for(home, cfg_file)
    generated = cfg.paths.generated
    datagen.generate(generated, **{**cfg.generator, "defect_rate": 0})

    data = generated / datagen.INTERACTIONS_FILE
    with data.open() as fh:
        rows = list(csv.DictReader(fh))
    columns = [*rows[0], "quantity", "unit_price", "value"]
    for row in rows:
        row.update(quantity="1", unit_price="2.5", value="")
    for line, (column, value, _) in HOSTILE.items():
        rows[line - 2][column] = value
    rows[OVERFLOW_LINE - 2].update(quantity="1e300", unit_price="1e300")
    with data.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    for stage in ("ingest", "transform", "quality", "train"):
        run_stage(home, cfg_file, stage)
    return {"home": home, "cfg": cfg, "rows": len(rows)}


@pytest.mark.e2e
def test_non_finite_numbers_are_rejected_with_their_reason(hostile_home: dict) -> None:
    cfg = hostile_home["cfg"]
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        rejected = dict(
            con.execute(
                "select source_line, rejection_reason from marts.rejected_interactions"
            ).fetchall()
        )
        non_finite_left = con.execute(
            "select count(*) from marts.interactions where not isfinite(quantity)"
            " or not isfinite(value) or not isfinite(rating)"
        ).fetchone()[0]
        clean, total_quantity = con.execute(
            "select count(*), sum(quantity) from marts.interactions"
        ).fetchone()

    expected = {line: reason for line, (_, _, reason) in HOSTILE.items()}
    expected[OVERFLOW_LINE] = "value is not a finite number"
    assert {line: rejected.get(line) for line in expected} == expected
    assert non_finite_left == 0
    assert clean == hostile_home["rows"] - len(rejected)
    assert total_quantity == clean  # every kept row has its quantity 1


@pytest.mark.e2e
def test_training_weighted_by_quantity_succeeds_on_the_hostile_file(hostile_home: dict) -> None:
    """Before the fix the gate passed and training failed with "NaN encountered in factors"."""
    cfg = hostile_home["cfg"]
    summary = json.loads((cfg.paths.reports / "data_quality_report.json").read_text())["runs"][-1]
    assert summary["gate_passed"]
    assert (cfg.paths.models / "model.npz").exists() or any(cfg.paths.models.rglob("*.npz"))


CATALOG = "id,title,category,price\nA,Runner,shoes,10\nB,Tote,bags,20\nC,Cap,hats,inf\n" + (
    "D,Sock,shoes,NaN\nE,Belt,bags,1e999\nF,Scarf,hats,-Infinity\n"
)


@pytest.mark.e2e
def test_a_non_finite_catalog_price_is_left_out(tmp_path: Path) -> None:
    """Before: one inf price made the catalog's mean price inf, every price_normalised NaN, and
    the gate failed on all of item_features. Now such a price is left out like a missing one."""
    (tmp_path / "in").mkdir()
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "products.csv").write_text(CATALOG)
    (tmp_path / "in" / "events.csv").write_text(
        "user_id,item_id,rating,timestamp\nu1,A,4,2026-05-01T10:00:00\nu2,C,5,2026-05-01T11:00:00\n"
    )
    cfg_file = tmp_path / "recomart.toml"
    cfg_file.write_text(
        '[paths]\ninteractions_glob = "in/*.csv"\n\n'
        '[catalog]\nsource = "files"\nfiles = "catalog/products.csv"\n'
    )
    run_stage(tmp_path, cfg_file, "ingest")
    run_stage(tmp_path, cfg_file, "transform")
    candidate = live.candidate_path(config_for(tmp_path, cfg_file).paths.warehouse)
    with duckdb.connect(str(candidate), read_only=True) as con:
        features = con.execute(
            "select item_id, price, price_normalised, interaction_count"
            " from marts.item_features order by item_id"
        ).fetchall()
    # A and B: mean 15, population std 5, so z-scores -1 and 1; C to F: no price, still items
    assert features == [
        ("A", 10.0, -1.0, 1),
        ("B", 20.0, 1.0, 0),
        ("C", None, None, 1),
        ("D", None, None, 0),
        ("E", None, None, 0),
        ("F", None, None, 0),
    ]


@pytest.mark.e2e
def test_a_non_finite_number_in_the_mart_fails_exactly_the_finiteness_check(
    hostile_home: dict, tmp_path: Path
) -> None:
    """The contract's own check, with real Soda: a copy of the built warehouse with two rows of
    marts.interactions made non-finite fails that check alone, counting the two rows."""
    cfg = hostile_home["cfg"]
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(cfg.paths.warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "update marts.interactions set quantity = 'inf'::double where interaction_key ="
            " (select min(interaction_key) from marts.interactions)"
        )
        con.execute(
            "update marts.interactions set value = 'nan'::double where interaction_key ="
            " (select max(interaction_key) from marts.interactions)"
        )
    result = quality.run_quality(
        cfg, contracts=[SODA_DIR / "marts_interactions.yml"], warehouse=copy
    )
    assert not_passed(result) == [
        ("marts.interactions", "No NaN or infinite numbers", None, "failed")
    ]
    check = next(
        c
        for c in result["datasets"]["marts.interactions"]["checks"]
        if c["name"] == "No NaN or infinite numbers"
    )
    assert check["value"] == 2


# ---------------------------------------------------------------------------------------------
# Feature store: versions differ in more than case


def test_a_version_differing_only_in_case_gets_the_stores_own_error(tmp_path: Path) -> None:
    """Saving V1 beside v1 gave DuckDB's raw 'Table with name "probe__V1" already exists'."""
    store = FeatureStore(warehouse=tmp_path / "warehouse.duckdb")
    frame = pd.DataFrame({"user_id": ["a", "b"], "score": [1.0, 2.0]})
    store.save_feature(frame, "probe", "v1", join_keys=["user_id"])
    with pytest.raises(FeatureStoreError, match="version 'V1' of probe exists as 'v1': versions"
                       " are case-insensitive"):  # fmt: skip
        store.save_feature(frame.assign(score=9.0), "probe", "V1")
    # a version whose table name differs from another's only in case ('.' becomes '_')
    store.save_feature(frame, "probe", "r.1")
    with pytest.raises(FeatureStoreError, match=r"would be stored as table probe__R_1, which"
                       r" version 'r.1' of probe already uses .*case-insensitive"):  # fmt: skip
        store.save_feature(frame, "probe", "R_1")
    assert store.describe("probe").versions == ("v1", "r.1")
    saved = store.get_feature("probe", version="v1")
    assert saved["score"].tolist() == [1.0, 2.0]


@pytest.mark.e2e
def test_a_training_killed_outright_is_marked_failed_by_the_next(hostile_home: dict) -> None:
    """`kill -9` of `recomart train` left its MLflow run RUNNING for ever; the next training
    marks it FAILED (models_ml.tracking)."""
    home, cfg = hostile_home["home"], hostile_home["cfg"]
    cfg_file = home / "recomart.toml"
    client = MlflowClient(tracking.tracking_uri(cfg.paths.mlflow))
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id
    before = {run.info.run_id for run in client.search_runs([experiment])}
    env = {**os.environ, "RECOMART_HOME": str(home), "RECOMART_CONFIG": str(cfg_file)}
    child = subprocess.Popen(
        [sys.executable, "-m", "recomart.cli", "train"], env=with_code_under_test(env),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    killed_run = None
    try:
        deadline = time.monotonic() + 300  # generous: the wait ends once the run exists
        while killed_run is None and time.monotonic() < deadline and child.poll() is None:
            new = [r for r in client.search_runs([experiment]) if r.info.run_id not in before]
            killed_run = new[0].info.run_id if new else None
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    assert killed_run is not None
    assert client.get_run(killed_run).info.status == "RUNNING"  # what kill -9 leaves

    run_stage(home, cfg_file, "train")

    killed = client.get_run(killed_run)
    assert killed.info.status == "FAILED"
    assert f" {child.pid} " in killed.data.tags[tracking.ENDED_TAG]
    latest = client.search_runs([experiment], order_by=["attributes.start_time DESC"])[0]
    assert latest.info.status == "FINISHED"
