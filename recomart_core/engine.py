"""The engine the pipeline runs on: DuckDB (one machine, the default) or Apache Spark.

recomart.toml's `engine` picks it; [spark] says which Spark. Every Spark process the pipeline
starts, dbt-spark's in its own process and ours for the quality gate and training, takes its
settings from one file, <paths.spark>/conf/spark-defaults.conf, which spark_conf_dir writes from
[spark] (Spark reads it from $SPARK_CONF_DIR when its JVM starts, as `spark-submit` does). pyspark
is imported only by spark_session, so the DuckDB engine never needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from recomart_core.settings import ENGINES

if TYPE_CHECKING:  # the config module imports settings; this module is imported by layers above
    from pyspark.sql import SparkSession

    from recomart_core.config import Config

DUCKDB, SPARK = ENGINES
CONF_FILE = "spark-defaults.conf"


def is_spark(cfg: Config) -> bool:
    return cfg.settings.engine == SPARK


def spark_conf(cfg: Config) -> dict[str, str]:
    """Every Spark setting the pipeline runs with: [spark]'s, and the ones it relies on (UTC,
    Parquet timestamps as microseconds, no UI, Spark's warehouse and Derby metastore inside
    [paths] spark rather than the working directory). [spark] conf is applied last."""
    spark = cfg.settings.spark
    folder = cfg.paths.spark
    return {
        "spark.master": spark.master,
        "spark.driver.memory": spark.driver_memory,
        "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.warehouse.dir": str(spark_warehouse(cfg)),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}",
        **spark.conf,
    }


def spark_conf_dir(cfg: Config) -> Path:
    """Write <paths.spark>/conf/spark-defaults.conf from spark_conf(cfg); the folder, for
    $SPARK_CONF_DIR."""
    conf_dir = cfg.paths.spark / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} {value}" for key, value in spark_conf(cfg).items()]
    (conf_dir / CONF_FILE).write_text(
        "# written by recomart from recomart.toml [spark] (recomart_core/engine.py)\n"
        + "\n".join(lines)
        + "\n"
    )
    return conf_dir


def spark_environment(cfg: Config) -> dict[str, str]:
    """The environment a Spark process of the pipeline starts with (dbt-spark's, ours)."""
    return {"SPARK_CONF_DIR": str(spark_conf_dir(cfg)), "RECOMART_SPARK_DIR": str(cfg.paths.spark)}


@contextmanager
def spark_session(cfg: Config, app: str = "recomart") -> Iterator[SparkSession]:
    """A Spark session with spark_conf(cfg), stopped when the block ends; inside another
    spark_session block, that block's session (so the run's quality gate and training share one
    JVM start), left to it to stop. It has no Hive metastore of its own: Derby lets one JVM at a
    time open it, and dbt's process needs it, so the gate and the training read dbt's tables as
    the Parquet folders they are (spark_table_path)."""
    os.environ.update(spark_environment(cfg))  # read when the JVM starts, like spark-submit
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    session = SparkSession.builder.appName(app).getOrCreate()
    try:
        yield session
    finally:
        session.stop()


def spark_warehouse(cfg: Config) -> Path:
    """Spark's warehouse folder, where dbt-spark writes its tables: <paths.spark>/warehouse."""
    return cfg.paths.spark / "warehouse"


def spark_table_path(cfg: Config, schema: str, table: str) -> Path:
    """The folder of a table dbt built on Spark: <warehouse>/<schema>.db/<table>."""
    return spark_warehouse(cfg) / f"{schema}.db" / table


def spark_tables(warehouse: Path) -> dict[str, Path]:
    """{"<schema>.<table>": folder} of every table folder of a Spark warehouse folder
    (<warehouse>/<schema>.db/<table>/) that holds Parquet files, sorted (views have no folder)."""
    return {
        f"{folder.parent.name.removesuffix('.db')}.{folder.name}": folder
        for folder in sorted(warehouse.glob("*.db/*"))
        if folder.is_dir() and next(folder.rglob("*.parquet"), None) is not None
    }
