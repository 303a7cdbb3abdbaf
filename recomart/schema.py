"""Names shared by every stage: columns, tables, event types. Change a name here, not in code."""

# The interactions CSV as it arrives (the canonical header; other headers are mapped onto it).
CSV_USER = "user_id"
CSV_ITEM = "item_id"
CSV_RATING = "rating"
CSV_TIMESTAMP = "timestamp"
CSV_EVENT = "event_type"
CSV_REQUIRED = (CSV_USER, CSV_ITEM, CSV_RATING, CSV_TIMESTAMP)
CSV_COLUMNS = (*CSV_REQUIRED, CSV_EVENT)

EVENT_TYPES = ("view", "add_to_cart", "purchase")
DEFAULT_EVENT = "view"
RATING_MIN = 1
RATING_MAX = 5

# Raw layer, written by dlt: one DuckDB schema (dlt dataset) per source.
RAW_INTERACTIONS_DATASET = "raw_interactions"
RAW_INTERACTIONS_TABLE = "interactions"
RAW_QUARANTINE_TABLE = "interactions_quarantine"
RAW_CATALOG_DATASET = "raw_catalog"
RAW_PRODUCTS_TABLE = "products"

# Columns of the raw interactions table (beyond the CSV's own).
INTERACTION_KEY = "interaction_key"  # md5 of a raw row: its values, file and line (dbt staging)
SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"  # 1-based line number in the file, header = line 1
RAW_LINE = "raw_line"
REASON = "reason"
REASON_DETAIL = "reason_detail"  # the value that could not be parsed, as it was

# Marts, built by dbt in the `marts` schema.
MARTS_SCHEMA = "marts"
INTERACTIONS_MART = "interactions"
REJECTED_MART = "rejected_interactions"
USER_FEATURES = "user_features"
ITEM_FEATURES = "item_features"
USER_ITEM_FEATURES = "user_item_features"

# Column names in the marts.
USER = "user_id"
ITEM = "item_id"
RATING = "rating"
EVENT = "event_type"
TIME = "event_at"
CATEGORY = "category"
TITLE = "title"
PRICE = "price"

# Written by training (models_ml.batch): batch recommendations for every user, for the API.
RECOMMENDATIONS_SCHEMA = "recommendations"
USER_RECOMMENDATIONS = "user_recommendations"
