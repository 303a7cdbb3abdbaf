"""Every rejection reason of int_interactions_validated is reachable through the real stages.

One CSV holds a clean row and one row per reason; the real ingest stage loads it (event names are
lowercased and mapped there, a negative quantity becomes a `return`) and the real transform stage
runs `dbt build`, data tests included, on it. The build must succeed (no dbt test may stop a row
before its reason is given) and each row must end up with its reason. The reasons are read from
the accepted values of int_interactions_validated.rejection_reason, so a new reason without a row
here fails the test.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import config_for, run_stage

from recomart_core import warehouse
from recomart_core.config import DBT_PROJECT_DIR

pytestmark = pytest.mark.e2e

CONFIG = """
[paths]
interactions_glob = "in/*.csv"

[ratings]
min = 1
max = 5
step = 0.5

[catalog]
source = "files"
files = "catalog/products.csv"
not_products = ["POST"]
"""

CATALOG = "id,title,category,price\nA,Runner,shoes,10\nB,Tote,bags,20\n"

# (line, reason): the header is line 1; None = clean
ROWS = [
    ("u1,A,4,2026-05-01T10:00:00,view,,", None),
    # the same event twice with other values: the higher line is kept, the other superseded
    ("u2,A,4,2026-05-01T11:00:00,purchase,1,", "superseded by a later version"),
    ("u2,A,5,2026-05-01T11:00:00,purchase,1,", None),
    # the same line twice (every value equal): the higher line is kept, the other a duplicate
    ("u10,B,4,2026-05-01T12:00:00,view,,", "duplicate event"),
    ("u10,B,4,2026-05-01T12:00:00,view,,", None),
    # two lines of one invoice listing item A: one event of 1 + 2 units on the higher line
    # ([ingest.interactions] transaction_lines = "sum", the default)
    ("u11,A,4,2026-05-01T13:00:00,purchase,1,INV1", "combined into one transaction line"),
    ("u11,A,4,2026-05-01T13:00:00,purchase,2,INV1", None),
    # a negative quantity: ingest marks it `return`; [ingest.interactions.returns] action = drop
    ("u3,A,,2026-05-02T10:00:00,purchase,-1,", "return or cancellation"),
    ("u4,A,7,2026-05-02T11:00:00,view,,", "rating out of range"),
    ("u5,A,3.25,2026-05-02T12:00:00,view,,", "rating not on the scale"),  # steps of 0.5
    ("u6,Z,4,2026-05-02T13:00:00,view,,", "unknown item_id"),
    # listed in [catalog] not_products (ahead of unknown item_id: no catalog lists postage)
    ("u9,POST,,2026-05-02T15:00:00,purchase,1,", "not a product"),
    # an event name ingest does not map: loaded lowercased and trimmed, rejected by dbt
    ("u7,B,4,2026-05-02T14:00:00, Click ,,", "unknown event_type"),
    # after the load that wrote it
    ("u8,B,4,2099-01-01T00:00:00,view,,", "event in the future"),
    # NaN and infinities type as doubles at ingest; dbt names the column (these rows also give
    # unit_price and value: the columns after transaction_id)
    ("u12,A,4,2026-05-03T10:00:00,view,inf,,,", "quantity is not a finite number"),
    ("u13,A,4,2026-05-03T11:00:00,purchase,1,,NaN,", "unit_price is not a finite number"),
    ("u14,A,4,2026-05-03T12:00:00,purchase,1,,,1e999", "value is not a finite number"),
    ("u15,A,inf,2026-05-03T13:00:00,view,,,,", "rating is not a finite number"),
]
FIELDS = 9  # the header's columns; the rows above that stop at transaction_id are padded


def _reasons_in_the_model() -> set[str]:
    models = yaml.safe_load(
        (DBT_PROJECT_DIR / "models" / "intermediate" / "_intermediate__models.yml").read_text()
    )["models"]
    validated = next(m for m in models if m["name"] == "int_interactions_validated")
    column = next(c for c in validated["columns"] if c["name"] == "rejection_reason")
    test = next(t for t in column["data_tests"] if "accepted_values" in t)
    return set(test["accepted_values"]["arguments"]["values"])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The candidate warehouse `recomart transform` built from the CSV above."""
    home = tmp_path_factory.mktemp("rejection_reasons")
    (home / "in").mkdir()
    (home / "catalog").mkdir()
    (home / "catalog" / "products.csv").write_text(CATALOG)
    header = "user_id,item_id,rating,timestamp,event_type,quantity,transaction_id,unit_price,value"
    lines = [header, *(r + "," * (FIELDS - 1 - r.count(",")) for r, _ in ROWS)]
    (home / "in" / "interactions.csv").write_text("\n".join(lines) + "\n")
    config_file = home / "recomart.toml"
    config_file.write_text(CONFIG)
    run_stage(home, config_file, "ingest")
    run_stage(home, config_file, "transform")  # dbt build: fails the test if any dbt test fails
    return warehouse.candidate_path(config_for(home, config_file).paths.warehouse)


def test_every_reason_is_reached_by_a_real_build(built: Path) -> None:
    with duckdb.connect(str(built), read_only=True) as con:
        rejected = dict(
            con.execute(
                "select source_line, rejection_reason from marts.rejected_interactions"
            ).fetchall()
        )
        clean = {
            line
            for (line,) in con.execute(
                "select s.source_line from marts.interactions as i"
                " join staging.stg_interactions__events as s using (interaction_key)"
            ).fetchall()
        }
        invoice = con.execute(
            "select quantity from marts.interactions where user_id = 'u11'"
        ).fetchall()

    expected = {line: reason for line, (_, reason) in enumerate(ROWS, start=2) if reason}
    assert rejected == expected
    assert clean == {line for line, (_, reason) in enumerate(ROWS, start=2) if not reason}
    assert set(rejected.values()) == _reasons_in_the_model()
    assert invoice == [(3.0,)]  # the two lines of INV1: 1 + 2 units
