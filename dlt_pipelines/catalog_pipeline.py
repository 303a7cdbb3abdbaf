"""Load the product catalog into raw_catalog: `python -m dlt_pipelines.catalog_pipeline`.

With no catalog URL configured ([sources.catalog] base_url in .dlt/config.toml, or
SOURCES__CATALOG__BASE_URL), the embedded catalog API is started on 127.0.0.1 over the generated
catalog for the duration of the load, and the load talks to it over HTTP.
"""

from __future__ import annotations

from contextlib import nullcontext

import dlt

from dlt_pipelines.catalog import catalog_source
from dlt_pipelines.catalog.settings import DATASET, PIPELINE_NAME
from dlt_pipelines.common import make_pipeline
from recomart import catalog_api, config, datagen


def configured_url() -> str:
    return dlt.config.get("sources.catalog.base_url", str) or ""


def load_catalog(cfg: config.Config | None = None, base_url: str | None = None) -> dict:
    """Load every product; returns {"load_id", "base_url", "products"} (rows in this load)."""
    cfg = cfg or config.load()
    url = base_url or configured_url()
    products_file = cfg.paths.generated / datagen.CATALOG_FILE
    server = (
        nullcontext(url) if url else catalog_api.serve(catalog_api.load_products(products_file))
    )
    with server as served_url:
        pipeline = make_pipeline(PIPELINE_NAME, DATASET, cfg)
        token = dlt.secrets.get("sources.catalog.token", str)
        info = pipeline.run(catalog_source(served_url, cfg.catalog["page_size"], token))
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("products", 0)
    return {
        "load_id": info.loads_ids[-1] if info.loads_ids else None,
        "base_url": url or "embedded",
        "products": rows,
    }


if __name__ == "__main__":
    print(load_catalog())
