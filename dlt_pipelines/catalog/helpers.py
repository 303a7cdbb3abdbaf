"""Reading a Fake Store shaped catalog over HTTP: paging, auth, and checks on what came back.

Retries are dlt's: the RESTClient's session retries 429 (honouring Retry-After), 5xx, timeouts and
dropped connections with exponential backoff, configured by [runtime] request_max_attempts,
request_backoff_factor, request_timeout and request_max_retry_delay (see .dlt/config.toml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.specs import RuntimeConfiguration
from dlt.common.jsonpath import TJsonPath
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import APIKeyAuth, BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from requests.auth import AuthBase

from dlt_pipelines.catalog.settings import PRODUCT_ID, PRODUCTS_PATH, TOTAL_COUNT_HEADER
from recomart_core.memory import bulk_allocation


class CatalogLoadError(RuntimeError):
    """The catalog could not be loaded; nothing was written to the warehouse.

    `url` is the request that failed (or the catalog's base URL), `page` its 1-based page number
    when the failure belongs to one page.
    """

    def __init__(self, message: str, url: str | None = None, page: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.page = page


class RepeatedPageError(ValueError):
    """A page holds exactly the products of the page before it: the server ignores `offset`."""


class ListOffsetPaginator(OffsetPaginator):
    """limit/offset paging over plain lists: the last page is the first one shorter than limit.

    No `total` field is needed, and an API that ignores `offset` and returns its whole list at
    once (the public Fake Store API does, for lists shorter than the limit) is read in one request.
    An API that ignores `offset` but has more products than the limit answers every page with the
    same products: the second such page raises RepeatedPageError instead of looping or loading
    duplicates.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit=limit, total_path=None)
        self.page = 0
        self.url: str | None = None
        self._previous_ids: list[Any] | None = None

    def init_request(self, request: requests.Request) -> None:
        self.page = 0
        self._previous_ids = None
        super().init_request(request)  # calls update_request: page 1

    def update_state(self, response: requests.Response, data: list[Any] | None = None) -> None:
        ids = [item.get(PRODUCT_ID) if isinstance(item, dict) else item for item in data or []]
        if ids and ids == self._previous_ids:
            raise RepeatedPageError(
                f"page {self.page} repeats the {len(ids)} products of page {self.page - 1}"
                f" (ids {_preview(ids)}): the server ignores `offset`. Ask for all products in one"
                " page instead: set [sources.catalog] page_size (SOURCES__CATALOG__PAGE_SIZE) above"
                " the catalog's size"
            )
        self._previous_ids = ids
        super().update_state(response, data)

    def update_request(self, request: requests.Request) -> None:
        super().update_request(request)
        if self.has_next_page:
            self._next(request)

    def _next(self, request: requests.Request) -> None:
        """Count the page about to be requested and remember its URL, for error messages."""
        self.page += 1
        self.url = requests.Request("GET", request.url, params=request.params).prepare().url

    def _stop_after_this_page(self, data: list[Any] | None = None) -> bool:
        return not data or len(data) < self.limit


class ListClient(RESTClient):
    """dlt's RESTClient, parsing a page that is a plain JSON list with orjson: the page's items
    as they are, several times faster than `response.json()` on pages of thousands of products.
    Anything else (an object, a data selector) goes dlt's way."""

    def extract_response(self, response: requests.Response, data_selector: TJsonPath) -> Any:
        if data_selector == "$":
            try:
                data = orjson.loads(response.content)
            except orjson.JSONDecodeError:  # not JSON, or JSON orjson refuses (a 2^64 integer)
                data = None
            if isinstance(data, list):
                return data
        return super().extract_response(response, data_selector)


def make_auth(token: str | None, api_key: str | None, api_key_header: str) -> AuthBase | None:
    """A bearer token, or an API key sent in the `api_key_header` header, or no auth."""
    if token and api_key:
        raise CatalogLoadError(
            "both [sources.catalog] token and api_key are set: configure one of them"
        )
    if token:
        return BearerTokenAuth(token=token)
    if api_key:
        return APIKeyAuth(name=api_key_header, api_key=api_key, location="header")
    return None


@dataclass
class FetchedCatalog:
    """Every product of the catalog, in the order the API listed them, and how they came."""

    base_url: str
    products: list[dict[str, Any]]
    pages: int
    total_count: int | None = None  # the X-Total-Count header of the first page, if any
    urls: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # the products' ids as text, once checked


def fetch_products(base_url: str, page_size: int, auth: AuthBase | None = None) -> FetchedCatalog:
    """GET every page of `<base_url>/products`; raise CatalogLoadError unless all of it came back.

    The whole catalog is read before anything is loaded, so a failure on any page leaves the
    warehouse untouched. Checked: each item is an object with an id (an integer or a non-empty
    string; stored as text), no id appears twice, the list is not empty, and its length matches
    X-Total-Count when the API sends that header.
    """
    runtime = resolve_configuration(RuntimeConfiguration())
    client = ListClient(base_url=base_url.rstrip("/") + "/", auth=auth, config=runtime)
    paginator = ListOffsetPaginator(page_size)
    fetched = FetchedCatalog(base_url=base_url, products=[], pages=0)
    try:
        with bulk_allocation():  # pages of thousands of dicts
            for page in client.paginate(PRODUCTS_PATH, paginator=paginator, data_selector="$"):
                fetched.pages += 1
                fetched.urls.append(page.response.url)
                if fetched.pages == 1 and TOTAL_COUNT_HEADER in page.response.headers:
                    fetched.total_count = _int_or_none(page.response.headers[TOTAL_COUNT_HEADER])
                fetched.products.extend(page)
    except CatalogLoadError:
        raise
    except Exception as error:
        url = paginator.url or base_url
        raise CatalogLoadError(
            f"catalog load from {base_url} failed on page {paginator.page} (GET {url}):"
            f" {describe_failure(error, runtime)}. Nothing was loaded",
            url=url,
            page=paginator.page or None,
        ) from error
    fetched.ids = check_products(fetched, base_url)
    return fetched


def check_products(fetched: FetchedCatalog, base_url: str) -> list[str]:
    """Raise CatalogLoadError unless `fetched` is a whole catalog of uniquely identified items;
    return the items' ids as text, in listing order."""
    ids: list[str] = []
    for position, item in enumerate(fetched.products):  # one cheap pass: types and text ids
        product_id = item.get(PRODUCT_ID) if isinstance(item, dict) else None
        if type(product_id) is int:
            ids.append(str(product_id))
        elif isinstance(product_id, str) and product_id.strip():
            ids.append(product_id.strip())
        elif isinstance(product_id, int) and not isinstance(product_id, bool):
            ids.append(str(int(product_id)))
        else:
            raise CatalogLoadError(
                f"catalog load from {base_url}: item {position + 1} of the list is not a product"
                f" with an integer or text `{PRODUCT_ID}`: {str(item)[:200]}. Nothing was loaded",
                url=base_url,
            )
    if len(set(ids)) != len(ids):  # find the first repeat only when there is one
        seen: dict[str, int] = {}
        for position, product_id in enumerate(ids):
            if product_id in seen:
                raise CatalogLoadError(
                    f"catalog load from {base_url}: product id {product_id} is listed twice"
                    f" (items {seen[product_id] + 1} and {position + 1}); the listing changed"
                    " while it was paged, or the API pages inconsistently. Nothing was loaded",
                    url=base_url,
                )
            seen[product_id] = position
    if not fetched.products:
        raise CatalogLoadError(
            f"catalog load from {base_url}: the API listed no products. An empty listing is"
            " refused (with retire_absent it would retire every product). Nothing was loaded",
            url=base_url,
        )
    if fetched.total_count is not None and fetched.total_count != len(fetched.products):
        raise CatalogLoadError(
            f"catalog load from {base_url}: the API reports {TOTAL_COUNT_HEADER}:"
            f" {fetched.total_count} but {len(fetched.products)} products came back"
            f" (pages: {fetched.pages}). Nothing was loaded",
            url=base_url,
        )
    return ids


def describe_failure(error: BaseException, runtime: RuntimeConfiguration) -> str:
    """One line naming the cause of a failed request, and the retries behind it when it had any."""
    retried = (
        f"gave up after {runtime.request_max_attempts} attempts ([runtime] request_max_attempts)"
    )
    if isinstance(error, RepeatedPageError):
        return str(error)
    if isinstance(error, requests.exceptions.JSONDecodeError):
        return f"the response is not valid JSON ({error})"
    if isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
        cause = f"HTTP {status} {error.response.reason}"
        if status in (401, 403):
            return f"{cause}: check the credentials ([sources.catalog] token or api_key)"
        if status == 429 or status >= 500:
            return f"{cause}; {retried}"
        return cause
    if isinstance(error, requests.Timeout):
        return (
            f"no response within {runtime.request_timeout} s ([runtime] request_timeout); {retried}"
        )
    if isinstance(error, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return f"connection failed or dropped ({type(error).__name__}: {error}); {retried}"
    return f"{type(error).__name__}: {error}"


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _preview(values: list[Any], n: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:n])
    return f"{shown}, ..." if len(values) > n else shown
