"""A local product catalog REST API in the Fake Store API's shape (stdlib only).

Routes (GET):
    /products                    all products by id; ?limit=&offset= pages them, ?sort=asc|desc
    /products/{id}               one product (404 if unknown, 400 if not an integer)
    /products/categories         sorted unique category names
    /products/category/{name}    products of one category (URL-decoded), paged like /products

List responses carry an X-Total-Count header (the count before paging). Errors are JSON
{"error": "..."}. Use serve() in tests and pipelines, run_forever() from the command line.

The products are sorted and grouped by category once, at start; a page is a slice of that list,
encoded by orjson (a page of 10,000 products in ~10 ms), so paging through 10^6 products costs
about as much as encoding them once.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from recomart_core.memory import bulk_allocation

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOTAL_COUNT_HEADER = "X-Total-Count"
JSON_TYPE = "application/json"


class ApiError(Exception):
    """A request the API refuses: an HTTP status and a message for the JSON body."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Response:
    """What a route returns: status, JSON payload and, for lists, the total before paging."""

    payload: Any
    status: HTTPStatus = HTTPStatus.OK
    total: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Catalog:
    """The products, indexed for the routes: sorted by id, by id, and the category names."""

    def __init__(self, products: list[dict[str, Any]]) -> None:
        self.products = sorted(products, key=lambda p: p["id"])
        self.by_id = {p["id"]: p for p in self.products}
        if len(self.by_id) != len(self.products):
            raise ValueError("product ids are not unique")
        self.by_category: dict[str, list[dict[str, Any]]] = {}
        for product in self.products:  # each category's products, by id
            self.by_category.setdefault(product["category"], []).append(product)
        self.categories = sorted(self.by_category)


def load_products(path: Path | str) -> list[dict[str, Any]]:
    """Read a products JSON file (a list of Fake Store-shaped objects with integer ids)."""
    with bulk_allocation():
        products = _loads(Path(path).read_bytes())
    if not isinstance(products, list) or not all(
        isinstance(p, dict) and isinstance(p.get("id"), int) for p in products
    ):
        raise ValueError(f"{path}: expected a JSON list of products with integer ids")
    return products


# ---------------------------------------------------------------------------------------------
# Routing: a pure function of the catalog and the request target


def route(catalog: Catalog, target: str) -> Response:
    """Answer a GET of `target` (path and query string), raising ApiError for refused requests."""
    url = urlsplit(target)
    parts = [unquote(part) for part in url.path.strip("/").split("/")]
    query = parse_qs(url.query, keep_blank_values=True)
    match parts:
        case ["products"]:
            return _page(catalog.products, query)
        case ["products", "categories"]:
            return Response(catalog.categories)
        case ["products", "category", name]:
            return _page(catalog.by_category.get(name, []), query)
        case ["products", product_id]:
            return Response(_product(catalog, product_id))
    raise ApiError(HTTPStatus.NOT_FOUND, f"no such resource: {url.path}")


def _product(catalog: Catalog, product_id: str) -> dict[str, Any]:
    try:
        key = int(product_id)
    except ValueError:
        raise ApiError(
            HTTPStatus.BAD_REQUEST, f"product id must be an integer, got {product_id!r}"
        ) from None
    if key not in catalog.by_id:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no product with id {key}")
    return catalog.by_id[key]


def _page(products: list[dict[str, Any]], query: dict[str, list[str]]) -> Response:
    """Sort by id (asc or desc), then keep items [offset, offset + limit)."""
    sort = query.get("sort", ["asc"])[0]
    if sort not in ("asc", "desc"):
        raise ApiError(HTTPStatus.BAD_REQUEST, f"sort must be 'asc' or 'desc', got {sort!r}")
    offset = _non_negative_int(query, "offset", default=0)
    limit = _non_negative_int(query, "limit", default=len(products))
    if sort == "desc":  # the slice of the reversed list, without reversing all of it
        end = max(len(products) - offset, 0)
        page = products[max(end - limit, 0) : end][::-1]
    else:
        page = products[offset : offset + limit]
    return Response(page, total=len(products))


def _non_negative_int(query: dict[str, list[str]], name: str, default: int) -> int:
    if name not in query:
        return default
    text = query[name][0].strip()
    if not text.isdecimal():
        raise ApiError(
            HTTPStatus.BAD_REQUEST, f"{name} must be a non-negative integer, got {text!r}"
        )
    return int(text)


# ---------------------------------------------------------------------------------------------
# HTTP server


class CatalogServer(ThreadingHTTPServer):
    """A threading HTTP server holding the catalog; daemon threads, so it never blocks exit."""

    daemon_threads = True

    def __init__(self, catalog: Catalog, host: str, port: int, verbose: bool = False) -> None:
        self.catalog = catalog
        self.verbose = verbose
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: CatalogServer

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _refuse_method(self) -> None:
        error = ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported")
        self._send(_error_response(error), send_body=True)

    do_POST = do_PUT = do_PATCH = do_DELETE = _refuse_method

    def _answer(self, send_body: bool) -> None:
        try:
            response = route(self.server.catalog, self.path)
        except ApiError as error:
            response = _error_response(error)
        except Exception as error:  # a bug: answer 500 rather than drop the connection
            response = _error_response(ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, repr(error)))
        self._send(response, send_body)

    def _send(self, response: Response, send_body: bool) -> None:
        body = _dumps(response.payload)
        self.send_response(response.status)
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Content-Length", str(len(body)))
        if response.total is not None:
            self.send_header(TOTAL_COUNT_HEADER, str(response.total))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


def _dumps(payload: Any) -> bytes:
    """JSON of `payload` (UTF-8, not ASCII-escaped): orjson, or the standard library for what
    orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # invalid, or valid JSON orjson refuses: the stdlib decides
        return json.loads(data)


def _error_response(error: ApiError) -> Response:
    headers = {"Allow": "GET, HEAD"} if error.status == HTTPStatus.METHOD_NOT_ALLOWED else {}
    return Response({"error": error.message}, status=error.status, headers=headers)


@contextmanager
def serve(
    products: list[dict[str, Any]],
    host: str = DEFAULT_HOST,
    port: int = 0,
    verbose: bool = False,
) -> Iterator[str]:
    """Run the API in a daemon thread while the block runs; yield its base URL.

    port=0 picks a free port. The server is shut down and its socket closed on exit.
    """
    server = CatalogServer(Catalog(products), host, port, verbose)
    thread = threading.Thread(target=server.serve_forever, name="catalog-api", daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_forever(
    products_file: Path | str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    verbose: bool = False,
) -> None:
    """Serve products_file in the foreground until Ctrl-C; print the URL on start."""
    products = load_products(products_file)
    with CatalogServer(Catalog(products), host, port, verbose) as server:
        print(f"Catalog API: {len(products)} products at {server.url}/products", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("Stopped.", file=sys.stderr)
