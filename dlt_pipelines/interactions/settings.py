"""Constants of the interactions source."""

from recomart.core import schema

SOURCE_NAME = "interactions"
DATASET = schema.RAW_INTERACTIONS_DATASET
PIPELINE_NAME = "recomart_interactions"
STATE_KEY = "loaded_files"  # source state: sha256 -> file name, for files already loaded
HASHED_KEY = "hashed_files"  # source state: path -> [size, mtime_ns, sha256], to skip rehashing
FILES_TABLE = "source_files"  # audit: one row per file seen, with its counts or its error
