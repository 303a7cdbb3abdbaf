"""A catalog kept in files: CSV, JSON and Parquet, through the real dlt load into DuckDB.

The files are mapped onto our columns by [catalog] in recomart.toml, checked like the API's
listing (ids present and unique), kept in the landing area and merged with history (scd2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import warehouse_rows

from dlt_pipelines.catalog_pipeline import CatalogLoadError, load_catalog
from recomart_core import config

MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '11,"American President, The (1995)",Comedy|Drama|Romance\n'
    "007,Dr. No (1962),Action|Adventure|Thriller\n"
    "42,Nothing Listed (2001),(no genres listed)\n"
)
MOVIE_SETTINGS = {
    "source": "files",
    "files": "catalog/movies.csv",
    "category_separator": "|",
    "column_map": {"movieId": "id", "genres": "category"},
}


def _cfg(home: Path, **catalog: object) -> config.Config:
    config.load.cache_clear()
    try:
        cfg = config.load()
    finally:
        config.load.cache_clear()
    return config.with_settings(cfg, catalog=catalog)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECOMART_HOME", str(tmp_path))
    monkeypatch.delenv("RECOMART_CONFIG", raising=False)
    (tmp_path / "catalog").mkdir()
    return tmp_path


def _current(cfg: config.Config) -> list[tuple]:
    return warehouse_rows(
        cfg,
        "select id, title, category, price from raw_catalog.products"
        " where _dlt_valid_to is null order by id",
    )


def test_a_movielens_movies_file_becomes_the_catalog(home: Path) -> None:
    (home / "catalog" / "movies.csv").write_text(MOVIES)
    cfg = _cfg(home, **MOVIE_SETTINGS)
    summary = load_catalog(cfg)
    assert _current(cfg) == [
        ("007", "Dr. No (1962)", "Action", None),  # 007 stays text
        ("1", "Toy Story (1995)", "Adventure", None),  # the first genre is the category
        ("11", "American President, The (1995)", "Comedy", None),
        ("42", "Nothing Listed (2001)", "(no genres listed)", None),
    ]
    assert (summary["products"], summary["new"], summary["changed"]) == (4, 4, 0)
    landed = sorted(Path(summary["landing"]).iterdir())
    assert [p.read_text() for p in landed] == [MOVIES]  # kept as it came


def test_a_changed_file_gives_new_versions_only_for_changed_products(home: Path) -> None:
    path = home / "catalog" / "movies.csv"
    path.write_text(MOVIES)
    cfg = _cfg(home, **MOVIE_SETTINGS)
    load_catalog(cfg)
    path.write_text(MOVIES.replace("Dr. No (1962)", "Dr. No (1962 remastered)"))
    summary = load_catalog(cfg)
    assert (summary["new"], summary["changed"], summary["unchanged"]) == (0, 1, 3)
    versions = warehouse_rows(
        cfg,
        "select title, _dlt_valid_to is null from raw_catalog.products where id = '007'"
        " order by _dlt_valid_from",
    )
    assert versions == [("Dr. No (1962)", False), ("Dr. No (1962 remastered)", True)]
    closed = warehouse_rows(
        cfg, "select id from raw_catalog.products where _dlt_valid_to is not null"
    )
    assert closed == [("007",)]  # by row hash: the other three versions are untouched


def test_json_and_parquet_catalogs_with_prices(home: Path) -> None:
    products = [
        {"sku": "85123A", "name": "WHITE HANGING HEART", "cat": "Home", "unit": 2.55},
        {"sku": "71053", "name": "WHITE METAL LANTERN", "cat": "Home", "unit": "3.39"},
    ]
    (home / "catalog" / "a.json").write_text(json.dumps(products))
    table = pa.table({"sku": ["22752"], "name": ["SET 7 BABUSHKA"], "cat": ["Gifts"],
                      "unit": [7.65]})  # fmt: skip
    pq.write_table(table, home / "catalog" / "b.parquet")
    cfg = _cfg(
        home,
        source="files",
        files="catalog/*",
        column_map={"sku": "id", "name": "title", "cat": "category", "unit": "price"},
    )
    load_catalog(cfg)
    assert _current(cfg) == [
        ("22752", "SET 7 BABUSHKA", "Gifts", 7.65),
        ("71053", "WHITE METAL LANTERN", "Home", 3.39),
        ("85123A", "WHITE HANGING HEART", "Home", 2.55),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MOVIES + "1,Toy Story again,Comedy\n", "'1' in movies.csv row 1, movies.csv row 5"),
        (MOVIES + ",No id,Comedy\n", "catalog products without an id: movies.csv row 5"),
        ("title,genres\nToy Story,Comedy\n", "movies.csv: no `id` column (its columns: title"),
        ("movieId,title,genres\n", "list no products"),
    ],
    ids=["an id twice", "a row without an id", "no id column", "no product"],
)
def test_a_bad_catalog_file_loads_nothing_and_names_the_row(
    home: Path, text: str, message: str
) -> None:
    (home / "catalog" / "movies.csv").write_text(text)
    cfg = _cfg(home, **MOVIE_SETTINGS)
    with pytest.raises(CatalogLoadError) as caught:
        load_catalog(cfg)
    assert message in str(caught.value)
    assert not cfg.paths.warehouse.exists() or _tables(cfg) == []


def test_no_catalog_file_matching_the_glob_is_an_error(home: Path) -> None:
    cfg = _cfg(home, source="files", files="catalog/*.csv")
    with pytest.raises(CatalogLoadError, match=r"no catalog file matches .*catalog/\*\.csv"):
        load_catalog(cfg)


def _tables(cfg: config.Config) -> list[tuple]:
    return warehouse_rows(
        cfg,
        "select table_name from information_schema.tables where table_schema = 'raw_catalog'"
        " and table_name = 'products'",
    )
