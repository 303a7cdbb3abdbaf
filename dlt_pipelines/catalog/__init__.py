"""dlt source for a product catalog served in the Fake Store API's shape (`GET /products`).

The catalog is fetched whole first (helpers.fetch_products: paging, auth, dlt's retries, checks),
then loaded by this source. `products` keeps history (dlt's scd2 merge strategy): one row per
version of a product, `_dlt_valid_from` / `_dlt_valid_to` bounding when it was the catalog's; the
current version has `_dlt_valid_to` null. The catalog as of time t is the rows with
`_dlt_valid_from <= t and (_dlt_valid_to is null or t < _dlt_valid_to)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dlt
import pyarrow as pa

from dlt_pipelines.catalog.helpers import (
    CatalogLoadError,
    FetchedCatalog,
    ListOffsetPaginator,
    fetch_products,
    make_auth,
)
from dlt_pipelines.catalog.settings import PRODUCT_ID, PRODUCTS_TABLE, ROW_HASH, SOURCE_NAME

__all__ = [
    "CatalogLoadError",
    "FetchedCatalog",
    "ListOffsetPaginator",
    "catalog_source",
    "fetch_products",
    "make_auth",
]


@dlt.source(name=SOURCE_NAME)
def catalog_source(
    products: Sequence[dict[str, Any]] | pa.Table, retire_absent: bool = False
) -> dlt.sources.DltResource:
    """The `products` resource over a complete catalog listing: an Arrow table with its `_dlt_id`
    row hash (catalog.table.listing_table of what fetch_products returned, or the catalog files),
    or dicts (a listing Arrow cannot hold flat; dlt hashes them). Product ids are text, as the
    shop writes them (an API's integer ids become their decimal text).

    A product whose attributes changed gets a new current version and its old one is closed.
    retire_absent=False (the default): `id` is the merge key, so only the products in the listing
    can change, and a product that disappears keeps its last version as current.
    retire_absent=True: a product missing from the listing is retired (its version closed, no
    current row), so the history is the catalog exactly as the API listed it, delistings included.
    """
    return dlt.resource(
        products if isinstance(products, pa.Table) else list(products),
        name=PRODUCTS_TABLE,
        write_disposition={
            "disposition": "merge",
            "strategy": "scd2",
            # dlt hashes rows it gets as dicts; an Arrow table brings its hash (catalog.table)
            "row_version_column_name": ROW_HASH,
        },
        # scd2 identifies versions by a hash of the whole row, not by a primary key. With `id` as
        # merge key, only the versions of the ids in the listing are compared (and closed). The
        # hint is stated both ways: dlt keeps a column hint in its stored schema until it is
        # overridden, so leaving it out would not switch retire_absent back on.
        columns={
            PRODUCT_ID: {"data_type": "text", "nullable": False, "merge_key": not retire_absent}
        },
    )
