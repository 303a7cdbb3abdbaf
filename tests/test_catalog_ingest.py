"""The catalog load against a real HTTP server on 127.0.0.1 that misbehaves on purpose.

Each fault either ends in exactly the catalog the server holds (after dlt's retries) or in a
CatalogLoadError naming the page and the cause, with the warehouse as the previous load left it.
Retries are made fast through dlt's own settings (RUNTIME__REQUEST_*), set here in the environment.
"""

from __future__ import annotations

import copy
import json
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fault_server import Fault, FaultServer

from dlt_pipelines.catalog_pipeline import CatalogLoadError, load_catalog
from recomart_core import config
from recomart_core.config import SODA_DIR
from soda_checks import gate as quality

N_PRODUCTS = 10
PAGE_SIZE = 4  # pages of 4, 4 and 2 products
MAX_ATTEMPTS = 4
TIMEOUT = 0.5  # seconds


def _product(product_id: int) -> dict[str, Any]:
    return {
        "id": product_id,
        "title": f"Product {product_id}",
        "price": 2.5 * product_id,
        "description": f"Description of product {product_id}.",
        "category": ("electronics", "jewelery")[product_id % 2],
        "image": f"https://images.example/{product_id}.png",
        "rating": {"rate": 3.9, "count": 10 * product_id},
    }


PRODUCTS = [_product(i) for i in range(1, N_PRODUCTS + 1)]


def set_fast_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt's retry settings, small; the catalog settings, read from the environment only."""
    for name, value in {
        "RUNTIME__REQUEST_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.01",
        "RUNTIME__REQUEST_TIMEOUT": str(TIMEOUT),
        "RUNTIME__REQUEST_MAX_RETRY_DELAY": "2",
        "SOURCES__CATALOG__PAGE_SIZE": str(PAGE_SIZE),
    }.items():
        monkeypatch.setenv(name, value)
    for key in ("BASE_URL", "TOKEN", "API_KEY", "API_KEY_HEADER", "RETIRE_ABSENT"):
        monkeypatch.delenv(f"SOURCES__CATALOG__{key}", raising=False)


@pytest.fixture(autouse=True)
def fast_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    set_fast_settings(monkeypatch)


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[config.Config]:
    """A Config whose home (warehouse, dlt state, landing area) is tmp_path."""
    monkeypatch.setenv("RECOMART_HOME", str(tmp_path))
    monkeypatch.delenv("RECOMART_CONFIG", raising=False)
    config.load.cache_clear()
    yield config.load()
    config.load.cache_clear()


@pytest.fixture(scope="module")
def loaded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home after one good load of PRODUCTS (made once; tests get a copy via `loaded`)."""
    home = tmp_path_factory.mktemp("loaded_home")
    with pytest.MonkeyPatch.context() as patch, FaultServer(copy.deepcopy(PRODUCTS)) as server:
        set_fast_settings(patch)
        patch.setenv("RECOMART_HOME", str(home))
        patch.delenv("RECOMART_CONFIG", raising=False)
        config.load.cache_clear()
        load_catalog(config.load(), base_url=server.url)
    config.load.cache_clear()
    return home


@pytest.fixture
def loaded(cfg: config.Config, loaded_home: Path) -> config.Config:
    """`cfg` with the warehouse, dlt state and landing area of one good load of PRODUCTS."""
    shutil.copytree(loaded_home, cfg.paths.home, dirs_exist_ok=True)
    return cfg


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(copy.deepcopy(PRODUCTS)) as running:
        yield running


# --- reading the warehouse ---------------------------------------------------------------------


def query(cfg: config.Config, sql: str) -> list[tuple]:
    if not cfg.paths.warehouse.exists():
        return []
    with duckdb.connect(str(cfg.paths.warehouse), read_only=True) as con:
        exists = con.execute(
            "select count(*) from information_schema.tables"
            " where table_schema = 'raw_catalog' and table_name = 'products'"
        ).fetchone()[0]
        return con.execute(sql).fetchall() if exists else []


def current(cfg: config.Config) -> list[tuple]:
    """The current catalog: (id, title, price, rating__count) by id."""
    return query(
        cfg,
        "select id, title, price, rating__count from raw_catalog.products"
        " where _dlt_valid_to is null order by length(id), id",
    )


def every_row(cfg: config.Config) -> list[tuple]:
    """Every version, history included: what a failed load must leave exactly as it was."""
    return query(
        cfg,
        "select id, title, price, _dlt_load_id, _dlt_valid_from, _dlt_valid_to"
        " from raw_catalog.products order by all",
    )


def expected(products: list[dict]) -> list[tuple]:
    return [(str(p["id"]), p["title"], p["price"], p["rating"]["count"]) for p in products]


def landed(cfg: config.Config) -> list[Path]:
    return sorted((cfg.paths.home / "data" / "raw" / "catalog").glob("*/products/*.json"))


# --- a good load -------------------------------------------------------------------------------


def test_load_reads_every_page_and_lands_the_list(cfg: config.Config, server: FaultServer) -> None:
    summary = load_catalog(cfg, base_url=server.url)

    assert current(cfg) == expected(PRODUCTS)
    assert len(every_row(cfg)) == N_PRODUCTS
    offsets = [(r.query["limit"], r.query["offset"]) for r in server.requests]
    assert offsets == [(["4"], ["0"]), (["4"], ["4"]), (["4"], ["8"])]  # the last page is short
    assert summary["base_url"] == server.url
    assert summary["products"] == N_PRODUCTS
    assert (summary["pages"], summary["new"], summary["changed"]) == (3, N_PRODUCTS, 0)
    assert (summary["unchanged"], summary["retired"]) == (0, 0)
    # the landing area: the list as fetched, named by the load id, under today's date
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = cfg.paths.home / f"data/raw/catalog/{day}/products/{summary['load_id']}.json"
    assert landed(cfg) == [path]
    assert summary["landing"] == str(path)
    assert json.loads(path.read_text()) == PRODUCTS
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)  # read-only
    loaded = query(cfg, "select distinct _dlt_load_id from raw_catalog.products")
    assert loaded == [(summary["load_id"],)]


def test_second_load_of_the_same_catalog_adds_no_version(
    cfg: config.Config, server: FaultServer
) -> None:
    first = load_catalog(cfg, base_url=server.url)
    first_file = Path(first["landing"])
    first_bytes = first_file.read_bytes()

    second = load_catalog(cfg, base_url=server.url)

    assert current(cfg) == expected(PRODUCTS)
    assert len(every_row(cfg)) == N_PRODUCTS
    assert (second["new"], second["changed"], second["unchanged"]) == (0, 0, N_PRODUCTS)
    assert landed(cfg) == sorted([first_file, Path(second["landing"])])  # one file per load
    assert first_file.read_bytes() == first_bytes


# --- faults the load recovers from -------------------------------------------------------------

RECOVERABLE = {
    "500 on page 2, then success": [Fault.ok(), Fault.status_code(500)],
    "503 three times, then success": [Fault.status_code(503)] * (MAX_ATTEMPTS - 1),
    "hanging past the timeout on page 3, then success": [Fault.ok(), Fault.ok(), Fault.hang()],
    "connection closed mid-response, then success": [Fault.drop()],
    "502 then a dropped connection, then success": [Fault.status_code(502), Fault.drop()],
}


@pytest.mark.parametrize("faults", RECOVERABLE.values(), ids=RECOVERABLE.keys())
def test_load_recovers_from(cfg: config.Config, server: FaultServer, faults: list[Fault]) -> None:
    server.queue(*faults)

    summary = load_catalog(cfg, base_url=server.url)

    assert current(cfg) == expected(PRODUCTS)
    assert len(every_row(cfg)) == N_PRODUCTS  # no page loaded twice
    retries = sum(f.kind != "ok" for f in faults)
    assert len(server.requests) == 3 + retries
    assert summary["products"] == N_PRODUCTS


def test_429_waits_for_retry_after(cfg: config.Config, server: FaultServer) -> None:
    server.queue(Fault.status_code(429, Retry_After="1"))

    load_catalog(cfg, base_url=server.url)

    first, second = server.requests[:2]
    assert second.query == first.query  # the same page, asked again
    waited = second.at - first.at
    assert 0.9 <= waited < 3  # the server's 1 s, not the 0.01 s backoff
    assert current(cfg) == expected(PRODUCTS)


# --- faults that fail the load -----------------------------------------------------------------

FATAL = {
    "hanging forever": (
        None,
        Fault.hang(),
        [r"on page 1 \(GET http://127\.0\.0\.1:\d+/products\?offset=0&limit=4\)",
         rf"no response within {TIMEOUT} s", rf"gave up after {MAX_ATTEMPTS} attempts"],
        MAX_ATTEMPTS,
    ),
    "503 forever on page 2": (
        [Fault.ok()],
        Fault.status_code(503),
        [r"on page 2 \(GET http://127\.0\.0\.1:\d+/products\?offset=4&limit=4\)",
         "HTTP 503 Service Unavailable", rf"gave up after {MAX_ATTEMPTS} attempts"],
        1 + MAX_ATTEMPTS,
    ),
    "malformed JSON on page 2": (
        [Fault.ok(), Fault.malformed()],
        None,
        [r"on page 2 \(GET .*offset=4&limit=4\)", "the response is not valid JSON"],
        2,  # not retried
    ),
    "a page repeating the previous one (offset ignored)": (
        None,
        Fault.first_page(),
        [r"on page 2 \(GET .*offset=4&limit=4\)", r"page 2 repeats the 4 products of page 1",
         r"ids 1, 2, 3, 4", "ignores `offset`", "page_size"],
        2,
    ),
    "a listing that ends early": (
        [Fault.truncate()],
        None,
        ["X-Total-Count: 10 but 2 products came back"],
        1,
    ),
    "a product added while paging (page 2 shifted by one)": (
        [Fault.ok(), Fault.shift()],
        None,
        [r"product id 4 is listed twice \(items 4 and 5\)", "the listing changed while it was"],
        3,  # the count still matches X-Total-Count: 4 twice, 8 missing
    ),
    "404": (
        None,
        Fault.status_code(404),
        [r"on page 1 \(GET .*\)", "HTTP 404 Not Found"],
        1,  # a client error is not retried
    ),
    "401": (
        None,
        Fault.status_code(401),
        ["HTTP 401 Unauthorized", r"check the credentials \(\[sources\.catalog\] token"],
        1,
    ),
}  # fmt: skip


@pytest.mark.parametrize("queued, always, messages, n_requests", FATAL.values(), ids=FATAL.keys())
def test_failed_load_leaves_the_previous_catalog(
    loaded: config.Config,
    server: FaultServer,
    queued: list[Fault] | None,
    always: Fault | None,
    messages: list[str],
    n_requests: int,
) -> None:
    cfg = loaded
    before, files_before = every_row(cfg), landed(cfg)
    assert len(before) == N_PRODUCTS and len(files_before) == 1
    server.products[0]["price"] = 99.5  # what a half-loaded catalog would show
    server.queue(*(queued or []))
    server.always = always

    started = time.monotonic()
    with pytest.raises(CatalogLoadError) as raised:
        load_catalog(cfg, base_url=server.url)
    elapsed = time.monotonic() - started

    message = str(raised.value)
    assert message.startswith(f"catalog load from {server.url}")
    for pattern in messages:
        assert raised.match(pattern), f"{pattern!r} not in {message!r}"
    assert "Nothing was loaded" in message
    assert len(server.requests) == n_requests
    assert elapsed < MAX_ATTEMPTS * (TIMEOUT + 0.5)  # bounded: attempts x timeout + tiny waits
    assert every_row(cfg) == before  # not one row more, less or changed
    assert landed(cfg) == files_before  # nothing landed for a load that did not happen


def test_empty_listing_is_refused(loaded: config.Config, server: FaultServer) -> None:
    before = every_row(loaded)
    server.products.clear()

    with pytest.raises(CatalogLoadError, match="the API listed no products"):
        load_catalog(loaded, base_url=server.url)

    assert every_row(loaded) == before


def test_failed_first_load_leaves_no_catalog(cfg: config.Config, server: FaultServer) -> None:
    server.queue(Fault.ok(), Fault.ok(), Fault.malformed())  # pages 1 and 2 were fine

    with pytest.raises(CatalogLoadError, match="on page 3"):
        load_catalog(cfg, base_url=server.url)

    assert every_row(cfg) == []
    assert landed(cfg) == []


def test_failure_while_loading_leaves_the_warehouse(
    loaded: config.Config, server: FaultServer
) -> None:
    cfg = loaded
    before = every_row(cfg)
    server.products[0]["price"] = 99.5

    with (
        warehouse_locked_by_another_process(cfg.paths.warehouse),
        pytest.raises(CatalogLoadError) as raised,
    ):
        load_catalog(cfg, base_url=server.url)

    message = str(raised.value)
    assert f"from {server.url} into {cfg.paths.warehouse} failed" in message
    assert "Could not set lock" in message
    assert "the warehouse is as the previous load left it" in message
    assert every_row(cfg) == before
    summary = load_catalog(cfg, base_url=server.url)  # no stale package in the way
    assert (summary["changed"], summary["unchanged"]) == (1, N_PRODUCTS - 1)
    assert len(every_row(cfg)) == N_PRODUCTS + 1


def test_failure_after_fetching_drops_the_load(loaded: config.Config, server: FaultServer) -> None:
    """The landing area cannot be written: the extracted load is dropped, not left pending."""
    cfg = loaded
    before = every_row(cfg)
    folder = landed(cfg)[0].parent
    folder.rename(folder.with_name("moved"))
    folder.write_text("a file where the landing folder should be")
    server.products[0]["price"] = 99.5

    with pytest.raises(CatalogLoadError, match="the warehouse is as the previous load left it"):
        load_catalog(cfg, base_url=server.url)

    assert every_row(cfg) == before
    folder.unlink()
    folder.with_name("moved").rename(folder)
    summary = load_catalog(cfg, base_url=server.url)
    assert (summary["changed"], summary["unchanged"]) == (1, N_PRODUCTS - 1)
    assert len(every_row(cfg)) == N_PRODUCTS + 1


@contextmanager
def warehouse_locked_by_another_process(warehouse: Path) -> Iterator[None]:
    """A second process holding the DuckDB file read-write, as a notebook or shell would."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(warehouse)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()


LOCK_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


# --- history -----------------------------------------------------------------------------------


def test_price_change_keeps_history_and_the_past_catalog(
    cfg: config.Config, server: FaultServer
) -> None:
    first = load_catalog(cfg, base_url=server.url)
    server.products[2]["price"] = 11.25  # product 3: 7.5 -> 11.25
    server.products.append(_product(11))
    second = load_catalog(cfg, base_url=server.url)

    versions = query(
        cfg,
        "select price, _dlt_load_id, _dlt_valid_from, _dlt_valid_to from raw_catalog.products"
        " where id = '3' order by _dlt_valid_from",
    )
    assert [(price, load_id) for price, load_id, _, _ in versions] == [
        (7.5, first["load_id"]),
        (11.25, second["load_id"]),
    ]
    (_, _, old_from, old_to), (_, _, new_from, new_to) = versions
    assert old_from < old_to == new_from and new_to is None  # closed when the new one opened
    assert current(cfg) == expected(server.products)
    assert (second["new"], second["changed"], second["unchanged"]) == (1, 1, N_PRODUCTS - 1)

    # the catalog as the first load left it
    as_of_first = query(
        cfg,
        f"""
        with t as (
            select inserted_at as t from raw_catalog._dlt_loads where load_id = '{first["load_id"]}'
        )
        select id, title, price, rating__count from raw_catalog.products, t
        where _dlt_valid_from <= t.t and (_dlt_valid_to is null or t.t < _dlt_valid_to)
        order by length(id), id
        """,
    )
    assert as_of_first == expected(PRODUCTS)


@pytest.mark.parametrize("retire_absent", [True, False])
def test_product_missing_from_a_later_load(
    loaded: config.Config,
    server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    retire_absent: bool,
) -> None:
    cfg = loaded
    if retire_absent:  # false is the configured default
        monkeypatch.setenv("SOURCES__CATALOG__RETIRE_ABSENT", "true")
    del server.products[4]  # product 5 is delisted

    summary = load_catalog(cfg, base_url=server.url)

    versions = query(cfg, "select _dlt_valid_to is null from raw_catalog.products where id = 5")
    if retire_absent:
        assert versions == [(False,)]  # its only version is closed
        assert current(cfg) == expected(server.products)
        assert summary["retired"] == 1
    else:
        assert versions == [(True,)]  # kept as it was last seen
        assert current(cfg) == expected(PRODUCTS)
        assert summary["retired"] == 0


def test_retire_absent_can_be_switched_back_off(
    loaded: config.Config, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge key is a hint dlt keeps in its schema: each load must state it anew."""
    monkeypatch.setenv("SOURCES__CATALOG__RETIRE_ABSENT", "true")
    del server.products[4]  # product 5
    load_catalog(loaded, base_url=server.url)
    monkeypatch.setenv("SOURCES__CATALOG__RETIRE_ABSENT", "false")
    del server.products[4]  # product 6

    summary = load_catalog(loaded, base_url=server.url)

    assert summary["retired"] == 0
    assert [row[0] for row in current(loaded)] == ["1", "2", "3", "4", "6", "7", "8", "9", "10"]


def test_contract_checks_the_current_catalog_only(
    loaded: config.Config, server: FaultServer
) -> None:
    """Soda's raw_products contract over real history: old versions repeat ids, and pass."""
    cfg = loaded
    for product in server.products:
        product["price"] += 1
    load_catalog(cfg, base_url=server.url)
    assert query(cfg, "select count(*), count(distinct id) from raw_catalog.products") == [
        (2 * N_PRODUCTS, N_PRODUCTS)
    ]

    result = quality.run_quality(cfg, contracts=[SODA_DIR / "raw_products.yml"])

    checks = result["datasets"]["raw_catalog.products"]["checks"]
    outcomes = {(c["name"], c["column"]): c["outcome"] for c in checks}
    assert outcomes[("No duplicate values", "id")] == "passed"
    # every check passes but the one that reads the interactions too, which this catalog-only
    # warehouse does not have
    assert outcomes.pop(("Few unknown items", None)) == "errored"
    assert set(outcomes.values()) == {"passed"}, checks
    row_count = next(c for c in checks if c["name"] == "Row count meets expected threshold")
    assert row_count["value"] == N_PRODUCTS  # the current rows, not the history


# --- configuration -----------------------------------------------------------------------------


def test_bearer_token_is_sent(
    cfg: config.Config, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CATALOG__TOKEN", "s3cret-token")

    load_catalog(cfg, base_url=server.url)

    assert {r.headers.get("Authorization") for r in server.requests} == {"Bearer s3cret-token"}


def test_api_key_is_sent_in_the_configured_header(
    cfg: config.Config, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CATALOG__API_KEY", "k-123")
    monkeypatch.setenv("SOURCES__CATALOG__API_KEY_HEADER", "X-Shop-Key")

    load_catalog(cfg, base_url=server.url)

    assert {r.headers.get("X-Shop-Key") for r in server.requests} == {"k-123"}
    assert all("Authorization" not in r.headers for r in server.requests)


def test_secrets_stay_out_of_error_messages(
    cfg: config.Config, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CATALOG__TOKEN", "s3cret-token")
    server.always = Fault.status_code(401)

    with pytest.raises(CatalogLoadError) as raised:
        load_catalog(cfg, base_url=server.url)

    assert "s3cret-token" not in str(raised.value)
    assert "s3cret-token" not in repr(raised.value.__cause__)


def test_token_and_api_key_together_are_refused(
    cfg: config.Config, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CATALOG__TOKEN", "t")
    monkeypatch.setenv("SOURCES__CATALOG__API_KEY", "k")

    with pytest.raises(CatalogLoadError, match=r"both .* token and api_key are set"):
        load_catalog(cfg, base_url=server.url)

    assert server.requests == []


def test_one_page_api_without_total_count(
    cfg: config.Config, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The public Fake Store API's shape: no X-Total-Count; a page_size above the catalog size."""
    monkeypatch.setenv("SOURCES__CATALOG__PAGE_SIZE", "100")
    server.send_total = False

    summary = load_catalog(cfg, base_url=server.url)

    assert summary["pages"] == 1
    assert current(cfg) == expected(PRODUCTS)


# --- the Arrow path: columns, row hashes --------------------------------------------------------


def history(cfg: config.Config) -> list[tuple]:
    """(id, price, _dlt_id, current) of every version."""
    return query(
        cfg,
        "select id, price, _dlt_id, _dlt_valid_to is null from raw_catalog.products"
        " order by length(id), id, _dlt_valid_from",
    )


def test_one_changed_price_closes_exactly_one_version_by_its_hash(
    cfg: config.Config, server: FaultServer
) -> None:
    """A row hash that were not a function of the row's values (a random `_dlt_id`, as dlt gives
    Arrow rows) would close and re-insert every product; one computed over fewer columns would
    miss the change."""
    load_catalog(cfg, base_url=server.url)
    before = history(cfg)
    server.products[2]["price"] = 11.25  # product 3

    second = load_catalog(cfg, base_url=server.url)

    after = history(cfg)
    closed = [row for row in after if not row[3]]
    assert [(product_id, price) for product_id, price, _, _ in closed] == [("3", 7.5)]
    assert closed[0][2] == before[2][2]  # the old version keeps its hash
    new = [row for row in after if row[0] == "3" and row[3]]
    assert [(price, current) for _, price, _, current in new] == [(11.25, True)]
    assert new[0][2] != before[2][2]  # a new hash for the new values
    assert len(after) == N_PRODUCTS + 1
    unchanged = [row for row in after if row[0] != "3"]
    assert unchanged == [row for row in before if row[0] != "3"]  # same hashes, still current
    assert (second["new"], second["changed"], second["unchanged"]) == (0, 1, N_PRODUCTS - 1)
    assert (second["retired"], second["products"]) == (0, N_PRODUCTS)
    assert set(second["seconds"]) >= {"fetch", "table", "extract", "land", "normalize", "load"}


def test_a_change_inside_a_nested_object_is_a_new_version(
    cfg: config.Config, server: FaultServer
) -> None:
    """`rating` is flattened into rating__rate and rating__count, and both are in the hash."""
    load_catalog(cfg, base_url=server.url)
    server.products[4]["rating"]["count"] += 1  # product 5
    server.products[6]["rating"] = None  # product 7: no rating at all

    summary = load_catalog(cfg, base_url=server.url)

    assert (summary["changed"], summary["unchanged"]) == (2, N_PRODUCTS - 2)
    rows = query(
        cfg,
        "select id, rating__rate, rating__count from raw_catalog.products"
        " where _dlt_valid_to is null and id in ('5', '7') order by id",
    )
    assert rows == [("5", 3.9, 51), ("7", None, None)]


def test_values_arrow_cannot_hold_in_one_column_load_row_by_row(
    cfg: config.Config, server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A field that is a number in one product and text in another (or a list) is not one Arrow
    column: such a listing is loaded as rows, dlt's way, and still loads whole."""
    server.products[1]["tags"] = ["new", "sale"]  # a list: dlt makes a nested table of it
    server.products[3]["price"] = "on request"

    summary = load_catalog(cfg, base_url=server.url)

    assert "loading them row by row" in caplog.text
    assert (summary["products"], summary["new"]) == (N_PRODUCTS, N_PRODUCTS)
    assert [row[0] for row in current(cfg)] == [str(i) for i in range(1, N_PRODUCTS + 1)]
    again = load_catalog(cfg, base_url=server.url)  # dlt's own hashes: nothing changed
    assert (again["changed"], again["unchanged"]) == (0, N_PRODUCTS)


def test_versions_hashed_by_dlt_are_not_re_versioned(
    cfg: config.Config, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse loaded while listings went to dlt as dicts (dlt's own row hashes): the first
    load through Arrow re-hashes its current versions and finds nothing changed but the price
    that did change."""
    with monkeypatch.context() as patch:
        patch.setattr("dlt_pipelines.catalog_pipeline.listing_table", lambda *_: None)
        load_catalog(cfg, base_url=server.url)
    old_hashes = {row[2] for row in history(cfg)}
    assert {len(h) for h in old_hashes} != {32}  # dlt's, not md5
    server.products[2]["price"] = 11.25  # product 3

    summary = load_catalog(cfg, base_url=server.url)

    assert (summary["new"], summary["changed"], summary["unchanged"]) == (0, 1, N_PRODUCTS - 1)
    assert [row[0] for row in history(cfg) if not row[3]] == ["3"]
    assert len(every_row(cfg)) == N_PRODUCTS + 1
    assert current(cfg) == expected(server.products)
