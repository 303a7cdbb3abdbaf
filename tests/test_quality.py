"""The quality gate: the real Soda contracts verified against marts built by the real dbt project.

Once per module, small generated data without defects goes through the real stages (generate,
ingest, `dbt build`, the gate that publishes the build). Every case then works on its own copy of
that warehouse: a clean copy passes every contract; each other case breaks one thing with SQL and
expects exactly the check that guards it to fail (or warn), the gate to follow, and enforce() to
name it. Checks that dbt owns (keys, relationships, the invariants of its SQL) are not in the
contracts and are tested by `dbt build` itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from conftest import config_for, not_passed, run_stage, small_config

from dbt_project import build
from recomart_core import config
from recomart_core.env import PROJECT_ROOT
from soda_checks import gate as quality

pytestmark = pytest.mark.e2e  # the contracts on marts that the real dbt project built

# small and without defects: every raw check measures 0, and a case controls each share exactly
SIZES = {"n_users": 120, "n_items": 60, "n_interactions": 2000, "defect_rate": 0}

DATASETS = {
    "raw_interactions.interactions",
    "raw_catalog.products",
    "marts.interactions",
    "marts.user_features",
    "marts.item_features",
    "marts.user_item_features",
}

FIRST_INTERACTION = "(select min(interaction_key) from marts.interactions)"
FIRST_USER = "(select min(user_id) from marts.user_features)"
FIRST_ITEM = "(select min(item_id) from marts.item_features)"
FIRST_PAIR = "(select min(rowid) from marts.user_item_features)"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home whose live warehouse dbt built from generated data and the gate published."""
    home = tmp_path_factory.mktemp("quality_home")
    config_file = small_config(home, **SIZES)
    for stage in ("generate", "ingest", "transform", "quality"):
        run_stage(home, config_file, stage)
    cfg = config_for(home, config_file)
    execute(cfg.paths.warehouse, "checkpoint")  # one file to copy, no write-ahead log beside it
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        raw_rows = con.execute("select count(*) from raw_interactions.interactions").fetchone()[0]
    return {"config_file": config_file, "warehouse": cfg.paths.warehouse, "raw_rows": raw_rows}


@pytest.fixture
def cfg(built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[config.Config]:
    """A Config whose home is tmp_path, holding a copy of the built warehouse."""
    monkeypatch.setenv("RECOMART_HOME", str(tmp_path))
    monkeypatch.setenv("RECOMART_CONFIG", str(built["config_file"]))
    config.load.cache_clear()
    cfg = config.load()
    cfg.paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(built["warehouse"], cfg.paths.warehouse)
    yield cfg
    config.load.cache_clear()


def execute(warehouse: Path, *statements: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        for sql in statements:
            con.execute(sql)


def scalar(warehouse: Path, sql: str) -> object:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def find_check(result: dict, dataset: str, name: str, column: str | None) -> dict:
    checks = result["datasets"][dataset]["checks"]
    return next(c for c in checks if c["name"] == name and c["column"] == column)


def test_clean_warehouse_passes_every_contract(cfg: config.Config, built: dict) -> None:
    result = quality.run_quality(cfg)

    assert set(result["datasets"]) == DATASETS
    assert result["gate_passed"] is True
    assert result["overall_score"] == 100.0
    assert not_passed(result) == []
    for summary in result["datasets"].values():
        assert summary["passed"] == len(summary["checks"]) > 0
        assert summary["score"] == 100.0
        assert summary["errors"] == []
    # values are Soda's measurements of this warehouse
    row_count = find_check(
        result, "raw_interactions.interactions", "Row count meets expected threshold", None
    )
    assert row_count["value"] == built["raw_rows"] == SIZES["n_interactions"]
    assert row_count["threshold"] == {"level": "fail", "must_be_greater_than": 0}
    quality.enforce(result)  # does not raise


def test_run_leaves_warehouse_unlocked_and_telemetry_off(cfg: config.Config) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    quality.run_quality(cfg)

    with duckdb.connect(str(cfg.paths.warehouse)) as con:  # read-write: nothing holds the file
        con.execute("create table marts.scratch as select 1 as x")
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)


def test_report_appends_one_entry_per_run(cfg: config.Config) -> None:
    first = quality.run_quality(cfg)
    second = quality.run_quality(cfg)

    report = json.loads((cfg.paths.reports / quality.REPORT_NAME).read_text())
    assert [run["run_at"] for run in report["runs"]] == [first["run_at"], second["run_at"]]
    assert report["runs"][-1]["datasets"].keys() == second["datasets"].keys()


def _share(percent: int) -> str:
    """The raw rows of the first `percent` % of the file's lines (the generated count is a
    multiple of 100, so the share is exact)."""
    return (
        "source_line in (select source_line from raw_interactions.interactions"
        f" order by source_line limit {SIZES['n_interactions'] * percent // 100})"
    )


def _repeat_lines(percent: int, **changes: str) -> list[str]:
    """SQL that delivers the first `percent` % of the raw lines again, each on a new line number
    (source_line + 100000), with the column values in `changes` (SQL) on the new line."""
    replaced = ", ".join(f"{sql} as {column}" for column, sql in changes.items())
    return [
        "insert into raw_interactions.interactions select * replace ("
        f"source_line + 100000 as source_line{', ' + replaced if replaced else ''})"
        f" from raw_interactions.interactions where {_share(percent)}"
    ]


def _rows_read(percent: int) -> str:
    """The file log counting the lines that _repeat_lines added (rows read = loaded)."""
    return (
        "update raw_interactions.source_files"
        f" set rows = rows + {SIZES['n_interactions'] * percent // 100}"
    )


# case -> (statements, (dataset, check, column, the value Soda measures))
BREAKS = {
    "rating 7 in marts.interactions": (
        [f"update marts.interactions set rating = 7 where interaction_key = {FIRST_INTERACTION}"],
        ("marts.interactions", "Rating on the rating scale", "rating", 1),
    ),
    "an event type the marts do not accept": (
        [
            "update marts.interactions set event_type = 'click'"
            f" where interaction_key = {FIRST_INTERACTION}"
        ],
        ("marts.interactions", "Known event types", "event_type", 1),
    ),
    "a clean event after the load that wrote it": (
        [
            "update marts.interactions set event_at = event_at + interval 100 years"
            f" where interaction_key = {FIRST_INTERACTION}"
        ],
        ("marts.interactions", "No event in the future", "event_at", 1),
    ),
    "hour 24 in marts.interactions": (
        [
            "update marts.interactions set event_hour = 24"
            f" where interaction_key = {FIRST_INTERACTION}"
        ],
        ("marts.interactions", "Hour within 0..23", "event_hour", 1),
    ),
    "a column missing from marts.interactions": (
        ["alter table marts.interactions drop column category"],
        ("marts.interactions", "Schema matches expected structure", None, 1),
    ),
    "a user average off the rating scale": (
        [f"update marts.user_features set avg_rating = 6 where user_id = {FIRST_USER}"],
        ("marts.user_features", "Average on the rating scale", "avg_rating", 1),
    ),
    "a missing user interaction count": (
        [f"update marts.user_features set interaction_count = null where user_id = {FIRST_USER}"],
        ("marts.user_features", "No missing values", "interaction_count", 1),
    ),
    "infinite normalised price": (
        [
            "update marts.item_features set price_normalised = 'inf'::double"
            f" where item_id = {FIRST_ITEM}"
        ],
        ("marts.item_features", "No NaN or infinite features", None, 1),
    ),
    "a negative popularity": (
        [f"update marts.item_features set popularity_score = -1 where item_id = {FIRST_ITEM}"],
        ("marts.item_features", "Popularity is not negative", "popularity_score", 1),
    ),
    "a category share above 1": (
        [f"update marts.user_item_features set category_share = 1.5 where rowid = {FIRST_PAIR}"],
        ("marts.user_item_features", "Share within 0..1", "category_share", 1),
    ),
    # two means on the demo's 1..5 scale differ by at most 5 - 1 = 4
    "a deviation beyond the rating span": (
        [
            "update marts.user_item_features set rating_minus_item_mean = -4.5"
            f" where rowid = {FIRST_PAIR}"
        ],
        (
            "marts.user_item_features",
            "Deviation within the rating span",
            "rating_minus_item_mean",
            1,
        ),
    ),
    # 8 % of the lines delivered twice: the same values in every column, another line number
    "raw interactions with 8% of lines repeated": (
        [*_repeat_lines(8), _rows_read(8)],
        (
            "raw_interactions.interactions",
            "Few duplicate rows",
            None,
            pytest.approx(100 * 160 / 2160),
        ),
    ),
    "raw interactions with 20% missing ratings": (
        [f"update raw_interactions.interactions set rating = null where {_share(20)}"],
        ("raw_interactions.interactions", "Few missing ratings", None, 20.0),
    ),
    "raw interactions with 10% ratings off the scale": (
        [f"update raw_interactions.interactions set rating = 9 where {_share(10)}"],
        ("raw_interactions.interactions", "Few ratings off the scale", "rating", 10.0),
    ),
    "two current versions of product 2": (
        [
            "insert into raw_catalog.products"
            " select * replace (99.5 as price, md5('p2b') as _dlt_id)"
            " from raw_catalog.products where id = '2' and _dlt_valid_to is null"
        ],
        ("raw_catalog.products", "No duplicate values", "id", 1),
    ),
}


@pytest.mark.parametrize("statements, expected", BREAKS.values(), ids=BREAKS.keys())
def test_one_defect_fails_exactly_its_check(
    cfg: config.Config, statements: list[str], expected: tuple
) -> None:
    dataset, name, column, value = expected
    execute(cfg.paths.warehouse, *statements)

    result = quality.run_quality(cfg)

    assert not_passed(result) == [(dataset, name, column, "failed")]
    assert find_check(result, dataset, name, column)["value"] == value
    assert result["gate_passed"] is False
    assert result["datasets"][dataset]["gate_passed"] is False
    with pytest.raises(quality.QualityGateError) as raised:
        quality.enforce(result)
    assert f"{dataset}: {name}" in str(raised.value)


WARNINGS = {
    "raw interactions with 2% missing ratings": (
        [f"update raw_interactions.interactions set rating = null where {_share(2)}"],
        ("raw_interactions.interactions", "Few missing ratings", None, 2.0),
    ),
    # the case the load-time rule is for: an event an hour after the load that wrote it, both
    # long past by the clock of the check (compared with now(), it would pass); dbt rejects it
    "an event that was in the future when it was loaded": (
        [
            "update raw_interactions.interactions"
            " set _dlt_load_id = cast(epoch(\"timestamp\") - 3600 as varchar)"
            " where source_line = 2"
        ],
        (
            "raw_interactions.interactions", "Few events in the future", "timestamp",
            100 / SIZES["n_interactions"],
        ),
    ),
    "a catalog load ten days old": (
        ["update raw_catalog._dlt_loads set inserted_at = current_timestamp - interval 10 day"],
        ("raw_catalog.products", "Latest load is recent", None, pytest.approx(10, abs=0.01)),
    ),
    # the API's own rating, on a scale the contract cannot know (a shop's API in the Fake Store
    # shape may rate 0..10) and read by no feature: a look at the source, not a stop
    "an API rating of 8 on product 2": (
        [
            "update raw_catalog.products set rating__rate = 8"
            " where id = '2' and _dlt_valid_to is null"
        ],
        ("raw_catalog.products", "API rating within 0..5", "rating__rate", 1),
    ),
}  # fmt: skip


@pytest.mark.parametrize("statements, expected", WARNINGS.values(), ids=WARNINGS.keys())
def test_tolerated_defect_warns_and_passes_the_gate(
    cfg: config.Config, statements: list[str], expected: tuple
) -> None:
    dataset, name, column, value = expected
    execute(cfg.paths.warehouse, *statements)

    result = quality.run_quality(cfg)

    assert not_passed(result) == [(dataset, name, column, "warned")]
    assert find_check(result, dataset, name, column)["value"] == value
    assert result["gate_passed"] is True
    summary = result["datasets"][dataset]
    checks = len(summary["checks"])
    assert summary["score"] == round(100 * (checks - 0.5) / checks, 1)
    quality.enforce(result)  # does not raise


# What valid data looks like depends on the shop's settings; the checks follow them.
@pytest.mark.parametrize(
    "scale, passes", [((1, 5, 0), False), ((0.5, 5, 0.5), True)], ids=["1..5", "0.5..5"]
)
def test_the_deviation_check_follows_the_rating_scale(
    cfg: config.Config, scale: tuple, passes: bool
) -> None:
    """A 0.5 from a user whose mean is 4.6 deviates by -4.1: valid on MovieLens's 0.5..5 half
    stars (two values differ by up to 4.5), impossible on 1..5 (up to 4)."""
    execute(
        cfg.paths.warehouse,
        "update marts.user_item_features set rating_minus_user_mean = -4.1"
        f" where rowid = {FIRST_PAIR}",
    )
    low, high, step = scale

    result = quality.run_quality(
        config.with_settings(cfg, ratings={"min": low, "max": high, "step": step})
    )

    check = ("marts.user_item_features", "Deviation within the rating span")
    expected = [] if passes else [(*check, "rating_minus_user_mean", "failed")]
    assert not_passed(result) == expected


def test_lines_of_one_invoice_are_not_duplicates(cfg: config.Config) -> None:
    """10 % of the lines listed again on their invoice with other quantities (the same user, item,
    event type and minute): one purchase whose quantities add up (dbt sums them), not a copy.
    Counting rows that repeat an event would measure 100 * 200 / 2200 = 9.1 % and fail."""
    execute(
        cfg.paths.warehouse,
        "update raw_interactions.interactions"
        " set transaction_id = 'INV' || source_line, quantity = 1, unit_price = 2.5",
        *_repeat_lines(10, quantity="3"),
        _rows_read(10),
    )

    result = quality.run_quality(cfg)

    assert not_passed(result) == []
    duplicates = find_check(result, "raw_interactions.interactions", "Few duplicate rows", None)
    assert duplicates["value"] == 0


def test_missing_table_errors_the_gate(cfg: config.Config) -> None:
    execute(cfg.paths.warehouse, "drop table marts.item_features")

    result = quality.run_quality(cfg)

    item_features = result["datasets"]["marts.item_features"]
    assert item_features["errored"] == len(item_features["checks"]) > 0
    assert item_features["score"] == 0.0
    assert any("does not exist" in error for error in item_features["errors"])
    # the other contracts do not read item_features: they still pass
    assert {d for d, *_ in not_passed(result)} == {"marts.item_features"}
    assert result["gate_passed"] is False
    with pytest.raises(quality.QualityGateError, match=r"marts\.item_features: contract error"):
        quality.enforce(result)


def test_unreadable_contract_errors_the_gate(cfg: config.Config, tmp_path: Path) -> None:
    broken = tmp_path / "broken_contract.yml"
    broken.write_text("dataset: [recomart/marts/interactions\n")

    result = quality.run_quality(cfg, contracts=[broken])

    summary = result["datasets"]["broken_contract"]  # no dataset known: keyed by file name
    assert summary["checks"] == []
    assert "YAML syntax error" in summary["errors"][0]
    assert result["gate_passed"] is False
    with pytest.raises(quality.QualityGateError, match="broken_contract: contract error"):
        quality.enforce(result)


def test_missing_warehouse_is_reported_before_soda_runs(cfg: config.Config) -> None:
    cfg.paths.warehouse.unlink()
    with pytest.raises(FileNotFoundError, match="No warehouse"):
        quality.run_quality(cfg)


def test_readme_cli_command_verifies_a_contract(cfg: config.Config) -> None:
    """`soda contract verify -ds soda_checks/datasource.yml -c soda_checks/<contract>.yml`."""
    env = {
        **os.environ,
        "SODA_CORE_TELEMETRY_ENABLED": "false",
        "RECOMART_WAREHOUSE": str(cfg.paths.warehouse),
    }
    soda = Path(sys.executable).with_name("soda")
    command = [str(soda), "contract", "verify", "-ds", "soda_checks/datasource.yml"]
    contract = ["-c", "soda_checks/marts_user_features.yml"]

    proc = subprocess.run(
        command + contract, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Contract results for recomart/marts/user_features" in proc.stdout


# What happens to an item the catalog lacks is a setting; the gate follows it.
UNKNOWN_ITEM = [
    # 10 % of the raw rows name item 99999, which no catalog version has; with unknown_items =
    # keep, dbt keeps them and item_features gets a row for the item
    f"update raw_interactions.interactions set item_id = '99999' where {_share(10)}",
    "insert into marts.item_features select * replace ('99999' as item_id, null as title,"
    " null as category, null as category_code, null as price, null as price_normalised)"
    f" from marts.item_features where item_id = {FIRST_ITEM}",
]


@pytest.mark.parametrize("policy", ["reject", "keep"])
def test_the_unknown_item_checks_follow_the_catalog_setting(
    cfg: config.Config, policy: str
) -> None:
    execute(cfg.paths.warehouse, *UNKNOWN_ITEM)

    result = quality.run_quality(config.with_settings(cfg, catalog={"unknown_items": policy}))

    if policy == "keep":  # kept on purpose: nothing to flag
        assert not_passed(result) == []
    else:  # 10 % of the rows would be lost, and item_features holds an item outside the catalog
        assert not_passed(result) == [
            ("marts.item_features", "Items outside the catalog only when kept", None, "failed"),
            ("raw_catalog.products", "Few unknown items", None, "failed"),
        ]
        check = find_check(result, "raw_catalog.products", "Few unknown items", None)
        assert check["value"] == 10.0


# Checks dbt owns, not repeated in the contracts: each defect fails the dbt tests that guard it
# (a key, a relationship, the invariant that the feature marts account for the interactions).
# case -> (statements, the dbt tests that fail)
OWNED_BY_DBT = {
    "duplicate user in user_features": (
        [
            "insert into marts.user_features"
            f" select * from marts.user_features where user_id = {FIRST_USER}"
        ],
        {"unique_user_features_user_id", "assert_feature_marts_agree_with_interactions"},
    ),
    "user_features user without interactions": (
        [
            "insert into marts.user_features select * replace ('nobody' as user_id)"
            f" from marts.user_features where user_id = {FIRST_USER}"
        ],
        {
            "relationships_user_features_user_id__user_id__ref_interactions_",
            "assert_feature_marts_agree_with_interactions",
        },
    ),
    "interaction item missing from item_features": (
        [
            f"delete from marts.user_item_features where item_id = {FIRST_ITEM}",
            f"delete from marts.item_features where item_id = {FIRST_ITEM}",
        ],
        {
            "relationships_interactions_item_id__item_id__ref_item_features_",
            "relationships_stg_catalog__products_item_id__item_id__ref_item_features_",
            "assert_feature_marts_agree_with_interactions",
        },
    ),
}  # fmt: skip


@pytest.mark.parametrize("statements, failing", OWNED_BY_DBT.values(), ids=OWNED_BY_DBT.keys())
def test_a_defect_dbt_owns_fails_its_dbt_tests_and_no_contract(
    cfg: config.Config, statements: list[str], failing: set[str]
) -> None:
    execute(cfg.paths.warehouse, *statements)

    with pytest.raises(build.DbtError):
        build.run_dbt(["test", "--exclude", "test_type:unit", "tag:history"], cfg)

    results = json.loads((cfg.paths.dbt_target / "run_results.json").read_text())["results"]
    failed = {r["unique_id"].split(".")[2] for r in results if r["status"] != "pass"}
    assert failed == failing
    assert not_passed(quality.run_quality(cfg)) == []  # one tool owns each check
