"""The catalog API over real HTTP on 127.0.0.1: listing, paging, lookups, categories, errors."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from recomart.demo import catalog_api, datagen

CATEGORIES = ("electronics", "home & kitchen", "men's clothing")
N_PRODUCTS = 23


def _product(product_id: int) -> dict[str, Any]:
    return {
        "id": product_id,
        "title": f"Product {product_id}",
        "price": round(3.5 * product_id, 2),
        "description": f"Description of product {product_id}.",
        "category": CATEGORIES[product_id % 3],
        "image": f"https://images.recomart.example/{product_id}.jpg",
        "rating": {"rate": 4.1, "count": product_id * 2},
    }


# Ids 1..23, given out of order: the API must list them by id.
PRODUCTS = [_product(i) for i in (*range(12, N_PRODUCTS + 1), *range(1, 12))]


@pytest.fixture(scope="module")
def base_url() -> str:
    with catalog_api.serve(PRODUCTS) as url:
        yield url


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], Any]:
    """Fetch url; return status, headers and the decoded JSON body (errors included)."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _ids(products: list[dict]) -> list[int]:
    return [p["id"] for p in products]


def test_serve_yields_a_local_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port > 0


def test_products_lists_everything_by_id(base_url: str) -> None:
    status, headers, body = get(f"{base_url}/products")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Total-Count"] == str(N_PRODUCTS)
    assert _ids(body) == list(range(1, N_PRODUCTS + 1))
    assert body[4] == _product(5)


@pytest.mark.parametrize("limit", [1, 5, 7, 23, 100])
def test_paging_covers_every_product_once_in_order(base_url: str, limit: int) -> None:
    seen, offset = [], 0
    while True:
        status, headers, page = get(f"{base_url}/products?limit={limit}&offset={offset}")
        assert status == 200
        assert headers["X-Total-Count"] == str(N_PRODUCTS)
        assert len(page) <= limit
        seen += _ids(page)
        if len(page) < limit:
            break
        offset += limit
    assert seen == list(range(1, N_PRODUCTS + 1))


def test_offset_past_the_end_is_empty(base_url: str) -> None:
    status, headers, body = get(f"{base_url}/products?offset=500&limit=10")
    assert (status, body, headers["X-Total-Count"]) == (200, [], str(N_PRODUCTS))


def test_limit_alone_and_zero_limit(base_url: str) -> None:
    assert _ids(get(f"{base_url}/products?limit=3")[2]) == [1, 2, 3]
    assert get(f"{base_url}/products?limit=0")[2] == []


def test_sort_desc_then_page(base_url: str) -> None:
    assert _ids(get(f"{base_url}/products?sort=desc")[2]) == list(range(N_PRODUCTS, 0, -1))
    assert _ids(get(f"{base_url}/products?sort=desc&limit=3&offset=2")[2]) == [21, 20, 19]
    assert _ids(get(f"{base_url}/products?sort=asc&limit=2&offset=21")[2]) == [22, 23]
    assert _ids(get(f"{base_url}/products?sort=desc&limit=5&offset=21")[2]) == [2, 1]
    assert _ids(get(f"{base_url}/products?sort=desc&offset=23")[2]) == []
    assert _ids(get(f"{base_url}/products?sort=desc&limit=0")[2]) == []


def test_one_product(base_url: str) -> None:
    status, _, body = get(f"{base_url}/products/17")
    assert (status, body) == (200, _product(17))


@pytest.mark.parametrize(
    ("path", "status", "mentions"),
    [
        ("/products/999", 404, "999"),
        ("/products/abc", 400, "abc"),
        ("/products?limit=abc", 400, "limit"),
        ("/products?limit=-1", 400, "limit"),
        ("/products?offset=x1", 400, "offset"),
        ("/products?offset=-5", 400, "offset"),
        ("/products?limit=", 400, "limit"),
        ("/products?sort=sideways", 400, "sort"),
        ("/carts", 404, "/carts"),
        ("/", 404, "/"),
    ],
)
def test_errors_are_json_and_say_why(base_url: str, path: str, status: int, mentions: str) -> None:
    got_status, headers, body = get(base_url + path)
    assert got_status == status
    assert headers["Content-Type"] == "application/json"
    assert list(body) == ["error"] and mentions in body["error"]


def test_write_methods_are_refused(base_url: str) -> None:
    status, headers, body = get(f"{base_url}/products", method="POST")
    assert status == 405 and "POST" in body["error"] and headers["Allow"] == "GET, HEAD"


def test_categories_sorted_unique(base_url: str) -> None:
    status, _, body = get(f"{base_url}/products/categories")
    assert (status, body) == (200, sorted(CATEGORIES))


@pytest.mark.parametrize("name", CATEGORIES)
def test_products_of_a_category(base_url: str, name: str) -> None:
    status, headers, body = get(f"{base_url}/products/category/{quote(name)}")
    expected = sorted(i for i in range(1, N_PRODUCTS + 1) if CATEGORIES[i % 3] == name)
    assert status == 200
    assert _ids(body) == expected
    assert headers["X-Total-Count"] == str(len(expected))


def test_category_paging_and_unknown_category(base_url: str) -> None:
    url = f"{base_url}/products/category/{quote('home & kitchen')}?limit=2&offset=1&sort=desc"
    assert _ids(get(url)[2]) == [19, 16]
    assert get(f"{base_url}/products/category/toys")[2] == []


def test_requests_are_not_logged(base_url: str, capfd: pytest.CaptureFixture) -> None:
    get(f"{base_url}/products/1")
    get(f"{base_url}/products/0")
    assert capfd.readouterr().err == ""


def test_serve_releases_its_port() -> None:
    with catalog_api.serve(PRODUCTS[:2]) as url:
        port = urlsplit(url).port
        assert get(f"{url}/products")[0] == 200
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nobody listens any more


def test_serves_a_generated_catalog(tmp_path: Path) -> None:
    datagen.generate(tmp_path, n_users=20, n_items=120, n_interactions=200)
    products = catalog_api.load_products(tmp_path / datagen.CATALOG_FILE)
    with catalog_api.serve(products) as url:
        status, headers, body = get(f"{url}/products?limit=50&offset=100")
        categories = get(f"{url}/products/categories")[2]
    assert status == 200 and headers["X-Total-Count"] == "120"
    assert body == products[100:]
    assert categories == sorted({p["category"] for p in products})


def test_load_products_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "products.json"
    path.write_text(json.dumps({"products": []}))
    with pytest.raises(ValueError, match="list of products"):
        catalog_api.load_products(path)
