"""Constants of the catalog source. The settings a user changes live in .dlt/config.toml."""

from recomart_core import schema

SOURCE_NAME = "catalog"
DATASET = schema.RAW_CATALOG_DATASET
PIPELINE_NAME = "recomart_catalog"
PRODUCTS_PATH = "products"
PRODUCTS_TABLE = schema.RAW_PRODUCTS_TABLE
PRODUCT_ID = "id"  # the natural key of a product in the Fake Store API shape

# The config section of the source: [sources.catalog] in .dlt/config.toml and .dlt/secrets.toml,
# SOURCES__CATALOG__<KEY> in the environment.
CONFIG_SECTION = "sources.catalog"
DEFAULT_PAGE_SIZE = 10_000  # a page of ~3.5 MB of Fake Store products
DEFAULT_API_KEY_HEADER = "X-API-Key"

# A list response may carry the size of the whole list in this header (the embedded API does; the
# public Fake Store API does not). When present, the load checks that it fetched that many products.
TOTAL_COUNT_HEADER = "X-Total-Count"

# scd2 history columns written by dlt: a version is current while valid_to is null.
VALID_FROM = "_dlt_valid_from"
VALID_TO = "_dlt_valid_to"
# The version hash scd2 compares between loads (its `row_version_column_name`): dlt's own hash of
# a row it gets as a dict; the md5 of the row's JSON for the Arrow tables we give it.
ROW_HASH = "_dlt_id"

# The landing area: <home>/data/raw/catalog/<yyyy-mm-dd>/products/<load id>.json
LANDING_KIND = "products"
