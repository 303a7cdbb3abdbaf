"""Load the product catalog into raw_catalog: `python -m dlt_pipelines.catalog_pipeline`.

Settings ([sources.catalog] in .dlt/config.toml, secrets in .dlt/secrets.toml, or the environment
as SOURCES__CATALOG__<KEY>): base_url, page_size, token or api_key (+ api_key_header),
retire_absent. The demo's embedded catalog API is not this module's business: `recomart ingest`
starts it (recomart.demo.catalog_api) and passes its URL as `base_url`.

A load is all or nothing: fetch every page (dlt's retries) and check the listing, keep it in the
landing area (<home>/data/raw/catalog/<date>/products/<load id>.json, never overwritten), then
merge it into raw_catalog.products (scd2 history) in one dlt load. Any failure raises
CatalogLoadError and leaves the warehouse as the previous load left it.

dlt gets the listing as one Arrow table (catalog.table: objects flattened, `_dlt_id` the md5 of
each row, which scd2 compares), not as dicts: about 100x faster at 10^6 products. A listing Arrow
cannot hold as flat columns (a field of mixed types, lists) goes the row way, dlt hashing it.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dlt
import orjson
import pyarrow as pa
from dlt.common.pipeline import ExtractInfo

from dlt_pipelines.catalog import (
    CatalogLoadError,
    FetchedCatalog,
    catalog_source,
    fetch_products,
    make_auth,
)
from dlt_pipelines.catalog.files import read_catalog_files
from dlt_pipelines.catalog.settings import (
    CONFIG_SECTION,
    DATASET,
    DEFAULT_API_KEY_HEADER,
    DEFAULT_PAGE_SIZE,
    LANDING_KIND,
    PIPELINE_NAME,
    PRODUCT_ID,
    PRODUCTS_TABLE,
    ROW_HASH,
    SOURCE_NAME,
    VALID_TO,
)
from dlt_pipelines.catalog.table import listing_table
from dlt_pipelines.common import landing_path, make_pipeline, write_once
from recomart_core import config, env
from recomart_core.timing import Timings

log = logging.getLogger(__name__)

__all__ = ["CatalogLoadError", "CatalogSettings", "catalog_settings", "load_catalog"]


@dataclass(frozen=True)
class CatalogSettings:
    """[sources.catalog]: where the catalog is and how to ask for it."""

    base_url: str = ""  # empty: the embedded API over the generated catalog
    page_size: int = DEFAULT_PAGE_SIZE
    token: str | None = None
    api_key: str | None = None
    api_key_header: str = DEFAULT_API_KEY_HEADER
    retire_absent: bool = False

    def __repr__(self) -> str:  # never print the secrets
        return (
            f"CatalogSettings(base_url={self.base_url!r}, page_size={self.page_size},"
            f" auth={'token' if self.token else 'api_key' if self.api_key else None},"
            f" retire_absent={self.retire_absent})"
        )


def catalog_settings() -> CatalogSettings:
    """Read [sources.catalog] from dlt's config and secrets (the environment overrides both)."""
    env.prepare()  # dlt reads .dlt/ of the project, wherever the process started

    def get(key: str, kind: type, default: object, secret: bool = False) -> object:
        provider = dlt.secrets if secret else dlt.config
        value = provider.get(f"{CONFIG_SECTION}.{key}", kind)
        return default if value is None else value

    page_size = get("page_size", int, DEFAULT_PAGE_SIZE)
    if not isinstance(page_size, int) or page_size < 1:
        raise CatalogLoadError(
            f"[sources.catalog] page_size must be a positive integer, got {page_size!r}"
        )
    return CatalogSettings(
        base_url=str(get("base_url", str, "")).strip(),
        page_size=page_size,
        token=get("token", str, None, secret=True) or None,
        api_key=get("api_key", str, None, secret=True) or None,
        api_key_header=str(get("api_key_header", str, DEFAULT_API_KEY_HEADER)),
        retire_absent=bool(get("retire_absent", bool, False)),
    )


def load_catalog(cfg: config.Config, base_url: str | None = None) -> dict:
    """Read the whole catalog from where [catalog] source says (the API, or files), land it,
    merge it into raw_catalog.products with history.

    Returns {"load_id", "base_url" (the URL, or the files' glob), "products" (in this load),
    "pages", "new", "changed", "unchanged", "retired", "landing" (the landed file or folder),
    "seconds" (per step: read or fetch, table, extract, land, normalize, load, changes)}.
    Raises CatalogLoadError, naming the URL and page or the file and row, and the cause, when the
    catalog could not be read, checked or loaded; the warehouse is then as the previous load left
    it. With [catalog] source = "none" there is nothing to load: ValueError.
    """
    settings = catalog_settings()
    source = cfg.settings.catalog.source
    pipeline = make_pipeline(PIPELINE_NAME, DATASET, cfg)
    seconds = Timings(suffix="")
    if source == "files" and base_url is None:
        with seconds.phase("read"):
            listing = read_catalog_files(cfg.paths.home, cfg.settings.catalog)
        pattern = str(cfg.paths.home / cfg.settings.catalog.files)

        def land_files(load_id: str) -> Path:
            return _land_files(cfg, load_id, listing.files)

        summary = _load(
            pipeline, listing.products, land_files, pattern, cfg, settings.retire_absent, seconds
        )
        return {"base_url": pattern, "pages": len(listing.files), **summary}
    if source == "none" and base_url is None:
        raise ValueError('[catalog] source = "none": there is no catalog to load')
    url = base_url or settings.base_url
    if not url:
        raise CatalogLoadError(
            "no catalog URL: set [sources.catalog] base_url in .dlt/config.toml (or"
            ' SOURCES__CATALOG__BASE_URL), or [catalog] source = "files" or "none" in recomart.toml'
        )
    auth = make_auth(settings.token, settings.api_key, settings.api_key_header)
    with seconds.phase("fetch"):
        fetched = fetch_products(url, settings.page_size, auth)
    with seconds.phase("table"):
        # columns for dlt; rows (dlt's slow path) only for what Arrow cannot hold flat
        table = listing_table(fetched.products, fetched.ids)
    if table is None:
        log.warning(
            "catalog from %s: the products are not flat columns of one type each (mixed types or"
            " lists): loading them row by row, which is much slower",
            url,
        )
    else:
        with seconds.phase("rehash"):
            _adopt_row_hashes(pipeline, table)

    def land_listing(load_id: str) -> Path:
        return _land(cfg, load_id, fetched)

    summary = _load(
        pipeline,
        fetched.products if table is None else table,
        land_listing,
        fetched.base_url,
        cfg,
        settings.retire_absent,
        seconds,
    )
    return {"base_url": url, "pages": fetched.pages, **summary}


def _load(
    pipeline: dlt.Pipeline,
    products: list[dict] | pa.Table,
    land: Callable[[str], Path],
    origin: str,
    cfg: config.Config,
    retire_absent: bool,
    seconds: Timings,
) -> dict:
    """extract -> land -> normalize -> load, as one unit: on failure, no package is left pending.
    `land(load_id)` keeps the listing as it came; `origin` (URL or files) names it in errors.
    Each step's time is added to `seconds`."""
    load_id, landed = None, None
    try:
        if pipeline.has_pending_data:
            # left by a run that died mid-load: an older listing, which would be loaded before
            # this one, out of order. Its raw data is in the landing area.
            log.warning("dropping catalog load packages left pending by an interrupted run")
            pipeline.abort_packages()
        with seconds.phase("extract"):
            extract_info = pipeline.extract(catalog_source(products, retire_absent))
        load_id = _products_load_id(extract_info)
        with seconds.phase("land"):
            landed = land(load_id)
        with seconds.phase("normalize"):
            pipeline.normalize()
        with seconds.phase("load"):  # the scd2 merge included
            pipeline.load(raise_on_failed_jobs=True)
    except Exception as error:
        _abort(pipeline)
        cause = getattr(error, "exception", None) or error  # dlt's PipelineStepFailed wraps it
        kept = f"; the listing as fetched is kept in {landed}" if landed else ""
        raise CatalogLoadError(
            f"catalog load {load_id or ''} from {origin} into {cfg.paths.warehouse}"
            f" failed ({type(cause).__name__}: {cause}). The load was dropped: the warehouse is"
            f" as the previous load left it{kept}",
            url=origin,
        ) from error
    with seconds.phase("changes"):
        changes = _changes(pipeline, load_id, len(products))
    steps = ", ".join(f"{step} {value:.2f} s" for step, value in seconds.items())
    log.info("catalog load %s: %s", load_id, steps)
    return {
        "load_id": load_id,
        "products": len(products),
        **changes,
        "landing": str(landed),
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
    }


def _adopt_row_hashes(pipeline: dlt.Pipeline, table: pa.Table) -> None:
    """Give the current versions that dlt hashed (loaded as dicts: before listings went to dlt as
    Arrow, or a listing that could not) the hash `table` has for the same values, so that they
    compare equal and the load does not re-version every product once. The md5 of the row's
    JSON, columns in name order, as catalog.table computes it; only when the warehouse table has
    each of the listing's columns. Closed versions keep theirs: scd2 compares current ones only.
    """
    if pipeline.default_schema_name is None:
        return  # nothing loaded yet
    known = pipeline.default_schema.tables.get(PRODUCTS_TABLE, {}).get("columns", {})
    columns = sorted(name for name in table.column_names if name != ROW_HASH)
    if not known or not set(columns) <= set(known):
        return
    fields = ", ".join(f'"{name}" := "{name}"' for name in columns)
    try:
        with pipeline.sql_client() as client:
            qualified = client.make_qualified_table_name(PRODUCTS_TABLE)
            client.execute_sql(
                f"update {qualified} set {ROW_HASH} = md5(to_json(struct_pack({fields})))"
                f" where {VALID_TO} is null and length({ROW_HASH}) <> 32"  # md5: 32 hex digits
            )
    except Exception as error:  # the merge then re-versions them once: not wrong, only noisy
        log.warning("catalog: current versions not re-hashed (%s)", error)


def _products_load_id(extract_info: ExtractInfo) -> str:
    """The load id of the package holding the products (the pipeline state may get another)."""
    for load_id in extract_info.loads_ids:
        if any(PRODUCTS_TABLE in m["table_metrics"] for m in extract_info.metrics[load_id]):
            return load_id
    raise RuntimeError(f"dlt extracted no {PRODUCTS_TABLE} table: {extract_info.loads_ids}")


def _land(cfg: config.Config, load_id: str, fetched: FetchedCatalog) -> Path:
    """Keep the product list as fetched: data/raw/catalog/<date>/products/<load id>.json."""
    path = landing_path(cfg, SOURCE_NAME, LANDING_KIND, f"{load_id}.json")
    try:
        body = orjson.dumps(fetched.products, option=orjson.OPT_INDENT_2)
    except TypeError:  # an integer beyond 64 bits: the standard library writes any
        body = json.dumps(fetched.products, ensure_ascii=False, indent=1).encode("utf-8")
    write_once(path, body)
    return path


def _land_files(cfg: config.Config, load_id: str, files: list[Path]) -> Path:
    """Keep the catalog files as they were: data/raw/catalog/<date>/files/<load id>/<name>."""
    folder = landing_path(cfg, SOURCE_NAME, "files", load_id)
    folder.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(files):
        target = folder / f"{number:03d}_{path.name}"
        shutil.copyfile(path, target)
        target.chmod(0o444)
    return folder


def _changes(pipeline: dlt.Pipeline, load_id: str, listed: int) -> dict:
    """{"new", "changed", "unchanged", "retired"}: products of load `load_id`, from its history.

    The load inserted a version for each new or changed product, and closed the previous version
    of each changed or retired one at its start (`_dlt_valid_to` = the load id as a timestamp).
    """
    try:
        with pipeline.sql_client() as client:
            table = client.make_qualified_table_name(PRODUCTS_TABLE)
            rows = client.execute_sql(
                f"""
                with
                inserted as (select {PRODUCT_ID} from {table} where _dlt_load_id = %s),
                closed as (
                    select {PRODUCT_ID} from {table}
                    -- the load id is the load's start in epoch seconds (a float string)
                    where abs(epoch_us({VALID_TO}) - round(cast(%s as double) * 1e6)) < 1000
                )
                select
                    count(*) filter (where {PRODUCT_ID} not in (select * from closed)),
                    count(*) filter (where {PRODUCT_ID} in (select * from closed)),
                    (select count(*) from closed
                     where {PRODUCT_ID} not in (select * from inserted))
                from inserted
                """,
                load_id,
                load_id,
            )
    except Exception:  # the load itself succeeded: report it without the counts
        log.exception("catalog load %s: could not count its changes", load_id)
        return {"new": None, "changed": None, "unchanged": None, "retired": None}
    new, changed, retired = rows[0]
    return {"new": new, "changed": changed, "unchanged": listed - new - changed, "retired": retired}


def _abort(pipeline: dlt.Pipeline) -> None:
    """Drop what the failed run left pending, so the next run starts from the warehouse as it is."""
    try:
        if pipeline.has_pending_data:
            pipeline.abort_packages()
    except Exception as error:  # the load error is the one to report
        log.warning("pending catalog load not dropped yet (%s): the next load drops it", error)


if __name__ == "__main__":
    print(load_catalog(config.load()))  # the top of a run: the one place it is read
