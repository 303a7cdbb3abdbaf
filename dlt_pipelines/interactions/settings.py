"""Constants of the interactions source, and where it stages its files."""

from pathlib import Path

from recomart_core import config, schema

SOURCE_NAME = "interactions"
DATASET = schema.RAW_INTERACTIONS_DATASET
PIPELINE_NAME = "recomart_interactions"
STATE_KEY = "loaded_files"  # source state: sha256 -> file name, for files already loaded
HASHED_KEY = "hashed_files"  # source state: path -> [size, mtime_ns, sha256], to skip rehashing
FILES_TABLE = "source_files"  # audit: one row per file and attempt, with its counts or its error
# source_files.status of a row: a parse loaded the file, or failed (its error says why). A path
# whose latest attempt failed is settled without a parse once the path is gone, or once it holds
# content loaded before: a row with that status, no counts and no error. (Rows written before the
# column existed have no status; their error tells.)
LOADED, FAILED, REMOVED, ALREADY_LOADED = "loaded", "failed", "removed", "already loaded"


def staged_dir(cfg: config.Config) -> Path:
    """Where parsed rows wait as Parquet (a folder per load id) for the load that inserts them."""
    return cfg.paths.dlt_pipelines / "staged" / SOURCE_NAME
