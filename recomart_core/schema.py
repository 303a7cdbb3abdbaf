"""Names shared by every stage: columns, tables, event types. Change a name here, not in code."""

# The interactions CSV as it arrives (the canonical header; other headers are mapped onto it).
CSV_USER = "user_id"
CSV_ITEM = "item_id"
CSV_RATING = "rating"
CSV_TIMESTAMP = "timestamp"
CSV_EVENT = "event_type"
CSV_QUANTITY = "quantity"  # optional: units bought (negative on a return line)
CSV_UNIT_PRICE = "unit_price"  # optional: price of one unit
CSV_VALUE = "value"  # optional: the line's value (dbt falls back to quantity * unit_price)
CSV_TRANSACTION = "transaction_id"  # optional: invoice or order number, as text
CSV_BASIC = (CSV_USER, CSV_ITEM, CSV_RATING, CSV_TIMESTAMP, CSV_EVENT)  # the generator's header
CSV_REQUIRED = (CSV_USER, CSV_ITEM, CSV_TIMESTAMP)
CSV_OPTIONAL = (CSV_RATING, CSV_EVENT, CSV_QUANTITY, CSV_UNIT_PRICE, CSV_VALUE, CSV_TRANSACTION)
CSV_COLUMNS = (CSV_USER, CSV_ITEM, CSV_RATING, CSV_TIMESTAMP, *CSV_OPTIONAL[1:])
# read from a file, never stored: added to the timestamp ([ingest.interactions] time_offset_unit)
CSV_TIME_OFFSET = "time_offset"
CSV_INPUT_COLUMNS = (*CSV_COLUMNS, CSV_TIME_OFFSET)  # what a file's column may be mapped onto
# ids (user, item) are the shop's own text: 1..ID_MAX_LENGTH characters, no control character
# (C0, DEL, C1). One rule for both ends: ingest quarantines an id that breaks it (SQL, see
# dlt_pipelines/interactions/helpers.py), the API refuses it (serving/schemas.py).
ID_MAX_LENGTH = 256  # longer user or item ids are quarantined (and refused by the API)
ID_CONTROL = r"[\x00-\x1f\x7f-\x9f]"  # a control character (a regular expression class)
ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"  # a whole id: no control character
ID_RULES = {"min_length": 1, "max_length": ID_MAX_LENGTH, "pattern": ID_PATTERN}

# Our event types. A shop's own names map onto them ([ingest.interactions] event_map); a return or
# cancellation becomes RETURN_EVENT ([ingest.interactions.returns]).
# The one place the event names are written on the Python side (dbt_project.yml and the Soda
# contracts receive them as vars from recomart_core.settings).
VIEW = "view"
ADD_TO_CART = "add_to_cart"
PURCHASE = "purchase"
EVENT_TYPES = (VIEW, ADD_TO_CART, PURCHASE)
RETURN_EVENT = "return"
DEFAULT_EVENT = VIEW
RATING_MIN = 1  # the default rating scale ([ratings] in recomart.toml)
RATING_MAX = 5

# The catalog's columns in our names (catalog files are mapped onto them by [catalog] column_map).
CATALOG_ID = "id"
CATALOG_COLUMNS = (CATALOG_ID, "title", "category", "price", "description", "image")

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
QUANTITY = "quantity"
VALUE = "value"

# Written by training (models_ml.batch): batch recommendations for every user, for the API.
RECOMMENDATIONS_SCHEMA = "recommendations"
USER_RECOMMENDATIONS = "user_recommendations"
