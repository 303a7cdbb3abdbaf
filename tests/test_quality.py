"""The quality gate: real Soda contracts verified against a small, real DuckDB warehouse.

A clean warehouse passes every contract; each case then breaks one thing and expects exactly the
check that guards it to fail (or warn), the gate to follow, and enforce() to name it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from recomart.core import config
from recomart.core.env import PROJECT_ROOT
from soda_checks import gate as quality

N_ROWS = 100  # raw interactions: one null rating is 1 %

RAW_PRODUCTS = """
create table raw_catalog.products as
select
    i::varchar as id, 'Product ' || i as title, (9.5 * i)::double as price,
    'A product.' as description,
    case when i % 2 = 0 then 'electronics' else 'jewelery' end as category,
    'https://example.com/' || i || '.png' as image, 4.1::double as rating__rate,
    120::bigint as rating__count, $load_id as _dlt_load_id, md5('p' || i) as _dlt_id,
    to_timestamp($load_id::double) as _dlt_valid_from, null::timestamptz as _dlt_valid_to,
from range(1, 6) as t(i)  -- product 5 gets no interactions
"""

CATALOG_LOADS = """
create table raw_catalog._dlt_loads as
select
    $load_id as load_id, 'catalog' as schema_name, 0::bigint as status,
    current_timestamp as inserted_at, 'hash' as schema_version_hash
"""

RAW_INTERACTIONS = """
create table raw_interactions.interactions as
select
    md5(n::varchar) as interaction_key,  -- not in the real raw table (staging derives it); the
    -- contract allows extra columns, and the hand-built marts below reuse it
    (n % 10 + 1)::varchar as user_id,
    (n % 4 + 1)::varchar as item_id, (n % 5 + 1)::double as rating,
    timestamp '2026-05-01 00:00:00' + to_hours(7 * n) as "timestamp",
    ['view', 'add_to_cart', 'purchase'][n % 3 + 1] as event_type,
    null::double as quantity, null::double as unit_price, null::double as value,
    null::varchar as transaction_id,
    'interactions_2026-05.csv' as source_file, (n + 2)::bigint as source_line,
    $load_id as _dlt_load_id,
from range($n_rows) as t(n)
"""

QUARANTINE = """
create table raw_interactions.interactions_quarantine (
    file_sha256 varchar, source_file varchar, source_line bigint, raw_line varchar,
    reason varchar, _dlt_load_id varchar
)
"""

SOURCE_FILES = """
create table raw_interactions.source_files as
select
    'interactions_2026-05.csv' as source_file, md5('file') as sha256, 4321::bigint as size_bytes,
    (select count(*) from raw_interactions.interactions)::bigint as "rows", null::varchar as error,
    (select count(*) from raw_interactions.interactions)::bigint as accepted,
    0::bigint as quarantined,
    (select any_value(_dlt_load_id) from raw_interactions.interactions) as _dlt_load_id
"""

REJECTED = """
create table marts.rejected_interactions as
select
    interaction_key, user_id, item_id, rating, event_type, "timestamp"::timestamp as event_at,
    source_file, source_line, 'rating out of range' as rejection_reason,
    _dlt_load_id as load_id, null::varchar as duplicate_of_interaction_key
from raw_interactions.interactions
where false
"""

MART_INTERACTIONS = """
create table marts.interactions as
select
    r.interaction_key, r.user_id, r.item_id, p.category, r.event_type, r.rating,
    r.user_id = '10' as is_rating_imputed,  -- user 10 has no observed rating
    r.quantity, r.value, r."timestamp"::timestamp as event_at, r."timestamp"::date as event_date,
    hour(r."timestamp")::integer as event_hour,
    isodow(r."timestamp")::integer as event_day_of_week, r._dlt_load_id as load_id,
from raw_interactions.interactions as r
join raw_catalog.products as p on p.id = r.item_id
"""

USER_FEATURES = """
create table marts.user_features as
with
as_of as (select max(event_at) as features_as_of from marts.interactions),
observed as (select * from marts.interactions where not is_rating_imputed)
select
    i.user_id, mode(i.category) as favourite_category, count(*) as interaction_count,
    count(o.rating) as rated_count, avg(o.rating) as avg_rating,
    stddev_samp(o.rating) as rating_std, min(o.rating) as min_rating,
    max(o.rating) as max_rating, count(distinct i.category) as category_count,
    count(distinct i.event_date) as active_days,
    (date_diff('second', max(i.event_at), any_value(features_as_of)) // 86400)::integer
        as days_since_last_interaction,
    min(i.event_at) as first_interaction_at, max(i.event_at) as last_interaction_at,
    any_value(features_as_of) as features_as_of,
from marts.interactions as i
left join observed as o using (interaction_key)
cross join as_of
group by i.user_id
"""

ITEM_FEATURES = """
create table marts.item_features as
with
as_of as (select max(event_at) as features_as_of from marts.interactions),
stats as (
    select
        item_id, count(*) as interaction_count, count(distinct user_id) as user_count,
        count(rating) filter (where not is_rating_imputed) as rating_count,
        avg(rating) filter (where not is_rating_imputed) as avg_rating,
        stddev_samp(rating) filter (where not is_rating_imputed) as rating_std,
        max(event_at) as last_interaction_at,
        -- weights in (0, 1]: one per interaction, halved every 30 days before features_as_of
        sum(exp(-ln(2) * date_diff('second', event_at, features_as_of) / 86400 / 30))
            as popularity_score,
    from marts.interactions, as_of
    group by item_id
)
select
    p.id as item_id, p.title, p.category,
    dense_rank() over (order by p.category)::integer as category_code, p.price,
    (p.price - avg(p.price) over ()) / stddev_pop(p.price) over () as price_normalised,
    coalesce(s.interaction_count, 0) as interaction_count,
    coalesce(s.user_count, 0) as user_count, coalesce(s.rating_count, 0) as rating_count,
    s.avg_rating, s.rating_std, coalesce(s.popularity_score, 0) as popularity_score,
    s.last_interaction_at, as_of.features_as_of,
from raw_catalog.products as p
left join stats as s on s.item_id = p.id
cross join as_of
"""

USER_ITEM_FEATURES = """
create table marts.user_item_features as
with
as_of as (select max(event_at) as features_as_of from marts.interactions),
observed as (select * from marts.interactions where not is_rating_imputed),
user_means as (select user_id, avg(rating) as user_mean from observed group by 1),
item_means as (select item_id, avg(rating) as item_mean from observed group by 1),
pairs as (
    select
        user_id, item_id, any_value(category) as category, count(*) as interaction_count,
        count(rating) filter (where not is_rating_imputed) as rated_count,
        avg(rating) filter (where not is_rating_imputed) as avg_rating,
        mode(event_hour) as preferred_hour, mode(event_day_of_week) as preferred_day_of_week,
        min(event_at) as first_interaction_at, max(event_at) as last_interaction_at,
    from marts.interactions
    group by 1, 2
)
select
    p.user_id, p.item_id, p.category, p.interaction_count, p.rated_count, p.avg_rating,
    p.avg_rating - u.user_mean as rating_minus_user_mean,
    p.avg_rating - i.item_mean as rating_minus_item_mean,
    p.preferred_hour::integer as preferred_hour, 0.5::double as preferred_hour_share,
    p.preferred_day_of_week::integer as preferred_day_of_week,
    0.5::double as preferred_day_of_week_share, 0.5::double as category_share,
    1.0::double as category_affinity,
    (date_diff('second', p.last_interaction_at, as_of.features_as_of) // 86400)::integer
        as days_since_last_interaction,
    p.first_interaction_at, p.last_interaction_at, as_of.features_as_of,
from pairs as p
left join user_means as u using (user_id)
left join item_means as i using (item_id)
cross join as_of
"""

STAGED_PRODUCTS = """
create view staging.stg_catalog__products as
select id as item_id from raw_catalog.products where _dlt_valid_to is null
"""

DATASETS = {
    "raw_interactions.interactions",
    "raw_catalog.products",
    "marts.interactions",
    "marts.user_features",
    "marts.item_features",
    "marts.user_item_features",
}


def build_warehouse(path: Path) -> None:
    """Every table the contracts read, with clean rows that agree with each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute("set TimeZone = 'UTC'")
        for schema in ("raw_interactions", "raw_catalog", "staging", "marts"):
            con.execute(f"create schema {schema}")
        load_id = f"{time.time():.6f}"  # dlt's load id: the load's unix epoch
        con.execute(RAW_PRODUCTS, {"load_id": load_id})
        con.execute(CATALOG_LOADS, {"load_id": load_id})
        con.execute(RAW_INTERACTIONS, {"load_id": load_id, "n_rows": N_ROWS})
        for sql in (
            STAGED_PRODUCTS,
            QUARANTINE, SOURCE_FILES, MART_INTERACTIONS, REJECTED, USER_FEATURES, ITEM_FEATURES,
            USER_ITEM_FEATURES,
        ):  # fmt: skip
            con.execute(sql)


def execute(warehouse: Path, *statements: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        for sql in statements:
            con.execute(sql)


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[config.Config]:
    """A Config whose home is tmp_path, with a clean warehouse built in it."""
    monkeypatch.setenv("RECOMART_HOME", str(tmp_path))
    monkeypatch.delenv("RECOMART_CONFIG", raising=False)
    config.load.cache_clear()
    cfg = config.load()
    build_warehouse(cfg.paths.warehouse)
    yield cfg
    config.load.cache_clear()


def not_passed(result: dict) -> list[tuple[str, str, str | None, str]]:
    """(dataset, check name, column, outcome) of every check that did not pass."""
    return [
        (dataset, check["name"], check["column"], check["outcome"])
        for dataset, summary in result["datasets"].items()
        for check in summary["checks"]
        if check["outcome"] != "passed"
    ]


def find_check(result: dict, dataset: str, name: str, column: str | None) -> dict:
    checks = result["datasets"][dataset]["checks"]
    return next(c for c in checks if c["name"] == name and c["column"] == column)


def test_clean_warehouse_passes_every_contract(cfg: config.Config) -> None:
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
    assert row_count["value"] == N_ROWS
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


BREAKS = {
    "duplicate user in user_features": (
        ["insert into marts.user_features select * from marts.user_features where user_id = 3"],
        ("marts.user_features", "No duplicate values", "user_id", 1),
    ),
    "user_features user without interactions": (
        [
            "insert into marts.user_features "
            "select * replace (99 as user_id) from marts.user_features where user_id = 3"
        ],
        ("marts.user_features", "User is in interactions", "user_id", 1),
    ),
    "rating 7 in marts.interactions": (
        ["update marts.interactions set rating = 7 where interaction_key = md5('5')"],
        ("marts.interactions", "Rating on the rating scale", "rating", 1),
    ),
    "interaction item missing from item_features": (
        [
            "delete from marts.item_features where item_id = 4",  # item 4: 25 of 100 rows
            "delete from marts.user_item_features where item_id = 4",  # its pairs go with it
        ],
        ("marts.interactions", "Item is in item_features", "item_id", 25),
    ),
    "raw interactions with 20% missing ratings": (
        [f"update raw_interactions.interactions set rating = null where source_line < {2 + 20}"],
        ("raw_interactions.interactions", "Few missing ratings", None, 20.0),
    ),
    "infinite normalised price": (
        ["update marts.item_features set price_normalised = 'inf'::double where item_id = 2"],
        ("marts.item_features", "No NaN or infinite features", None, 1),
    ),
    "two current versions of product 2": (
        [
            "insert into raw_catalog.products"
            " select * replace (99.5 as price, md5('p2b') as _dlt_id)"
            " from raw_catalog.products where id = 2"
        ],
        ("raw_catalog.products", "No duplicate values", "id", 1),
    ),
    "a column missing from marts.interactions": (
        ["alter table marts.interactions drop column category"],
        ("marts.interactions", "Schema matches expected structure", None, 1),
    ),
    "hour 24 in marts.interactions": (
        ["update marts.interactions set event_hour = 24 where interaction_key = md5('7')"],
        ("marts.interactions", "Hour within 0..23", "event_hour", 1),
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
        ["update raw_interactions.interactions set rating = null where source_line in (2, 3)"],
        ("raw_interactions.interactions", "Few missing ratings", None, 2.0),
    ),
    "a catalog load ten days old": (
        ["update raw_catalog._dlt_loads set inserted_at = current_timestamp - interval 10 day"],
        ("raw_catalog.products", "Latest load is recent", None, pytest.approx(10, abs=0.01)),
    ),
}


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


def test_missing_table_errors_the_gate(cfg: config.Config) -> None:
    execute(cfg.paths.warehouse, "drop table marts.item_features")

    result = quality.run_quality(cfg)

    item_features = result["datasets"]["marts.item_features"]
    assert item_features["errored"] == len(item_features["checks"]) > 0
    assert item_features["score"] == 0.0
    assert any("does not exist" in error for error in item_features["errors"])
    # the reference check of marts.interactions cannot run either
    reference = find_check(result, "marts.interactions", "Item is in item_features", "item_id")
    assert reference["outcome"] == "errored"
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
    # 10 of the 100 raw rows name item 99, which no catalog version has; with unknown_items =
    # keep, dbt keeps them and item_features gets a row for the item
    "update raw_interactions.interactions set item_id = '99' where source_line < 12",
    "insert into marts.item_features select * replace ('99' as item_id, null as title,"
    " null as category, null as category_code, null as price, null as price_normalised)"
    " from marts.item_features where item_id = '1'",
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
