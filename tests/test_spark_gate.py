"""The quality gate on Apache Spark: the same contracts give the same verdict as on DuckDB.

Once per module, small generated data (the generator's 1 % of defects, so the raw contracts
warn) goes through the pipeline's ingest and transform (DuckDB's candidate warehouse), the lake
export and one dbt run on Spark. Then the gate runs on both engines over the same input: the
same outcome for every check, the same values and scores; on Spark through the pipeline's own
`recomart quality` stage, which also exports Spark's marts to [paths] features, the same rows
and column types as DuckDB's export. Last, one defect injected into the raw interactions on
both sides (a tenth more rows, their rating off the scale) fails exactly the check that guards
it, on both engines, and the Spark gate raises QualityGateError naming it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import config_for, run_stage, small_config
from test_spark_transform import pytestmark as spark_marks

from dbt_project import build
from dlt_pipelines.lake_pipeline import replicate_to_lake
from feature_store.export import export_marts
from recomart_core import config, engine
from recomart_core import schema as s
from recomart_core.warehouse import candidate_path
from soda_checks import gate
from soda_checks.report import REPORT_NAME

pytestmark = [  # test_spark_transform's (e2e, spark, pyspark, dbt-spark, Java), and Soda's
    *spark_marks,
    pytest.mark.skipif(
        importlib.util.find_spec("soda_sparkdf") is None,
        reason="soda-sparkdf is not installed: pip install -e '.[dev,spark]'",
    ),
]

SIZES = {"n_users": 120, "n_items": 60, "n_interactions": 2000}  # the default 1 % of defects
# checks whose value is an age measured against now(): the two runs are a minute apart
AGE_CHECKS = {"Latest load is recent"}
RAW = f"{s.RAW_INTERACTIONS_DATASET}.{s.RAW_INTERACTIONS_TABLE}"
DEFECT_FILE = "part-defect.parquet"
OFF_SCALE = 99.0  # a rating no [ratings] scale has


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home with DuckDB's candidate warehouse, the lake, and the same marts built on Spark
    (one `dbt run`: dbt's data tests on Spark are test_spark_transform's); two config files, one
    per engine, over the same folders."""
    home = tmp_path_factory.mktemp("spark_gate_home")
    duckdb_file = small_config(home, **SIZES)
    spark_file = home / "recomart_spark.toml"
    text = duckdb_file.read_text()
    spark_file.write_text(re.sub(r'(?m)^engine = "duckdb"', 'engine = "spark"', text, count=1))
    run_stage(home, duckdb_file, "generate")
    run_stage(home, duckdb_file, "ingest")
    run_stage(home, duckdb_file, "transform")
    on_duckdb, on_spark = config_for(home, duckdb_file), config_for(home, spark_file)
    assert engine.is_spark(on_spark) and not engine.is_spark(on_duckdb)
    replicate_to_lake(on_duckdb)  # the lake, as the ingest on engine spark writes it
    build.register_lake(on_spark)
    build.run_dbt(["run"], on_spark, target=build.SPARK)
    return {
        "home": home,
        "spark_file": spark_file,
        "duckdb": on_duckdb,
        "spark": on_spark,
        "candidate": candidate_path(on_duckdb.paths.warehouse),
    }


def outcomes(entry: dict) -> dict[tuple, str]:
    """{(dataset, column, check type, check name): outcome} of a gate run."""
    return {
        (dataset, check["column"], check["type"], check["name"]): check["outcome"]
        for dataset, summary in entry["datasets"].items()
        for check in summary["checks"]
    }


def values(entry: dict) -> dict[tuple, object]:
    """{(dataset, column, check type, check name): measured value} but for AGE_CHECKS."""
    return {
        (dataset, check["column"], check["type"], check["name"]): check["value"]
        for dataset, summary in entry["datasets"].items()
        for check in summary["checks"]
        if check["name"] not in AGE_CHECKS
    }


def same_value(a: object, b: object) -> bool:
    """Equal, numbers to 1e-6 (Spark computes a percent in decimals, DuckDB in doubles)."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    return a == b


def assert_same_results(on_spark: dict, on_duckdb: dict) -> None:
    assert outcomes(on_spark) == outcomes(on_duckdb)
    spark_values, duckdb_values = values(on_spark), values(on_duckdb)
    assert spark_values.keys() == duckdb_values.keys()
    differ = {k: (v, duckdb_values[k]) for k, v in spark_values.items()
              if not same_value(v, duckdb_values[k])}  # fmt: skip
    assert not differ
    for dataset, summary in on_duckdb["datasets"].items():
        assert on_spark["datasets"][dataset]["score"] == summary["score"], dataset
        assert on_spark["datasets"][dataset]["errors"] == summary["errors"] == [], dataset
    assert on_spark["overall_score"] == on_duckdb["overall_score"]
    assert on_spark["load_ids"] == on_duckdb["load_ids"]


def digest(relation: str) -> tuple[list, int, str]:
    """(column names and types, rows, md5 of the sorted rows) of a Parquet relation."""
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        columns = con.execute(f"describe select * from {relation}").fetchall()
        rows, md5 = con.execute(
            f"select count(*), md5(coalesce(string_agg(t, chr(10) order by t), ''))"
            f" from (select cast(x as varchar) as t from {relation} as x)"
        ).fetchone()
    return [(c[0], c[1]) for c in columns], rows, md5


def test_spark_gate_gives_duckdbs_results_and_exports_the_same_marts(
    built: dict, tmp_path: Path
) -> None:
    on_duckdb = gate.run_quality(built["duckdb"], warehouse=built["candidate"])

    # the pipeline's own stage on Spark: the gate, the report, the export to [paths] features
    run_stage(built["home"], built["spark_file"], "quality")
    cfg = built["spark"]
    runs = json.loads((cfg.paths.reports / REPORT_NAME).read_text())["runs"]
    on_spark = runs[-1]

    assert on_spark["warehouse"] == str(cfg.paths.spark / "warehouse")
    assert set(on_spark["datasets"]) == set(on_duckdb["datasets"])
    assert len(on_duckdb["datasets"]) == 6
    assert on_spark["gate_passed"] and on_duckdb["gate_passed"]
    assert_same_results(on_spark, on_duckdb)
    # the input exercises the checks: the raw defects warn (so a score below 100), the schema
    # checks ran, and the SQL metrics measured something on both engines
    assert on_duckdb["warned"] >= 2 and on_duckdb["overall_score"] < 100
    assert sum(c[2] == "schema" for c in outcomes(on_duckdb)) == 6
    duplicates = [v for k, v in values(on_duckdb).items() if k[3] == "Few duplicate rows"]
    assert duplicates and duplicates[0] > 0

    # Spark's marts, exported after the gate passed: DuckDB's, row for row and type for type
    duckdb_features = tmp_path / "duckdb_features"
    duckdb_rows = export_marts(built["candidate"], duckdb_features)
    spark_files = sorted(p.name for p in cfg.paths.features.glob("*.parquet"))
    assert spark_files == sorted(f"{t}.parquet" for t in duckdb_rows)
    for name in spark_files:
        spark_digest = digest(f"read_parquet('{cfg.paths.features / name}')")
        assert spark_digest == digest(f"read_parquet('{duckdb_features / name}')"), name
    assert duckdb_rows[s.INTERACTIONS_MART] > 1000


def add_off_scale_ratings(cfg: config.Config, candidate: Path, tmp_path: Path) -> tuple[Path, int]:
    """The same defect on both sides: a tenth more raw interactions (copies of the first rows by
    file and line) whose rating is OFF_SCALE, in a copy of DuckDB's candidate warehouse (returned)
    and as one more Parquet file of the lake's table (DEFECT_FILE). Returns (copy, rows added)."""
    copy = tmp_path / "defect.duckdb"
    shutil.copy(candidate, copy)
    folder = cfg.paths.lake / s.RAW_INTERACTIONS_DATASET / s.RAW_INTERACTIONS_TABLE
    rows_sql = (
        "select * replace ({rating} as rating) from {table}"
        " order by source_file, source_line limit (select count(*) // 10 from {table})"
    )
    with duckdb.connect(str(copy)) as con:
        con.execute(f"insert into {RAW} " + rows_sql.format(rating=OFF_SCALE, table=RAW))
    lake_table = f"read_parquet('{folder}/*.parquet')"
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        select = rows_sql.format(rating=OFF_SCALE, table=lake_table)
        con.execute(f"copy ({select}) to '{folder / DEFECT_FILE}' (format parquet)")
        added = con.execute(f"select count(*) from read_parquet('{folder / DEFECT_FILE}')")
        return copy, added.fetchone()[0]


def test_a_defect_fails_the_same_check_on_spark_as_on_duckdb(built: dict, tmp_path: Path) -> None:
    copy, added = add_off_scale_ratings(built["duckdb"], built["candidate"], tmp_path)
    try:
        on_duckdb = gate.run_quality(built["duckdb"], warehouse=copy)
        on_spark = gate.run_quality(built["spark"])
    finally:
        (built["spark"].paths.lake / RAW.replace(".", "/") / DEFECT_FILE).unlink()

    assert added > 100
    failed = {key for key, outcome in outcomes(on_spark).items() if outcome == "failed"}
    assert failed == {(RAW, "rating", "failed_rows", "Few ratings off the scale")}
    assert_same_results(on_spark, on_duckdb)
    assert not on_spark["gate_passed"]
    with pytest.raises(gate.QualityGateError, match="Few ratings off the scale"):
        gate.enforce(on_spark)
