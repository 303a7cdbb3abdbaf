"""dlt source for a product catalog served in the Fake Store API's shape (`GET /products`)."""

from __future__ import annotations

import dlt
from dlt.sources.rest_api import rest_api_source

from dlt_pipelines.catalog.helpers import ListOffsetPaginator
from dlt_pipelines.catalog.settings import PRODUCTS_PATH, SOURCE_NAME
from recomart import schema as s


def catalog_source(
    base_url: str, page_size: int, token: str | None = None
) -> dlt.sources.DltSource:
    """The `products` resource: every product, merged on id (one current row per product).

    Retries with exponential backoff on 429/5xx/timeouts come from dlt's [runtime] settings.
    A bearer token is sent when given (.dlt/secrets.toml or SOURCES__CATALOG__TOKEN).
    """
    client: dict = {
        "base_url": base_url.rstrip("/") + "/",
        "paginator": ListOffsetPaginator(page_size),
    }
    if token:
        client["auth"] = {"type": "bearer", "token": token}
    return rest_api_source(
        {
            "client": client,
            "resources": [
                {
                    "name": s.RAW_PRODUCTS_TABLE,
                    "primary_key": "id",
                    "write_disposition": "merge",
                    "endpoint": {"path": PRODUCTS_PATH, "data_selector": "$"},
                }
            ],
        },
        name=SOURCE_NAME,
    )
