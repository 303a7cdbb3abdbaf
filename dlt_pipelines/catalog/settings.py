"""Constants of the catalog source."""

from recomart import schema

SOURCE_NAME = "catalog"
DATASET = schema.RAW_CATALOG_DATASET
PIPELINE_NAME = "recomart_catalog"
PRODUCTS_PATH = "products"
