"""A product catalog kept in files (CSV, JSON or Parquet), read by DuckDB into one Arrow table.

[catalog] in recomart.toml: `files` (a glob, relative to the home), `format` (auto: by extension),
`delimiter` (CSV), `column_map` (the file's column name -> ours: id, title, category, price,
description, image; a column already named like ours needs no entry) and `category_separator`
(a list such as MovieLens's `Adventure|Animation` gives its first entry as the category).

Whole columns in DuckDB, never Python per row. The listing is checked like the API's: every row
has an id, no id appears twice, something was listed; else CatalogLoadError names the file, the
row and the id, and nothing is loaded.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from dlt_pipelines.catalog.helpers import CatalogLoadError
from dlt_pipelines.sql import SHOP_ID_MACRO, quote
from recomart_core import schema as s
from recomart_core.settings import Catalog

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "json",
           ".ndjson": "json", ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip
PREVIEW = 5  # offending rows named in an error
NUMERIC_TYPES = {"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT",
                 "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"}  # fmt: skip
# The products in the API's shape (its rating columns empty), with `_dlt_id`, the hash of the
# values that dlt's scd2 compares between loads to tell a changed product (dlt computes it for
# rows it gets as dicts, not for Arrow tables). Not sorted: the warehouse keeps no row order.
PRODUCTS_SQL = f"""
select
    "{s.CATALOG_ID}", title, price, description, category, image,
    cast(null as double) as rating__rate,
    cast(null as bigint) as rating__count,
    md5(to_json({{
        id: "{s.CATALOG_ID}", title: title, price: price, description: description,
        category: category, image: image
    }})) as _dlt_id
from listed
"""


@dataclass(frozen=True)
class CatalogFiles:
    """The products of every catalog file (id, title, category, price, description, image),
    and the files they came from."""

    products: pa.Table
    files: list[Path]


def file_format(path: Path, settings: Catalog) -> str:
    """csv, json or parquet: the configured format, else the file's extension."""
    if settings.format != "auto":
        return settings.format
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise CatalogLoadError(
            f"{path}: cannot tell the catalog file's format from its extension; set [catalog]"
            f" format to one of csv, json, parquet"
        ) from None


def _reader(path: Path, kind: str, settings: Catalog) -> str:
    where = quote(str(path))
    if kind == "csv":
        return (
            f"read_csv({where}, header = true, all_varchar = true, delim = "
            f"{quote(settings.delimiter)}, quote = '\"', escape = '\"')"
        )
    if kind == "json":
        return f"read_json_auto({where})"
    return f"read_parquet({where})"


def _select(con: duckdb.DuckDBPyConnection, path: Path, order: int, settings: Catalog) -> str:
    """One file's rows in our columns, with the file's order and each row's number in it."""
    source = _reader(path, file_format(path, settings), settings)
    try:
        described = con.execute(f"describe select * from {source}").fetchall()
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        raise CatalogLoadError(f"{path}: not readable as a catalog file: {reason}") from exc
    names = [row[0] for row in described]
    types = {row[0]: row[1] for row in described}
    header = _header(con, path, source) if "read_csv(" in source else names
    _refuse_twice(path, header, settings)
    ours = {settings.column_map.get(name, name): name for name in names}
    if s.CATALOG_ID not in ours:
        raise CatalogLoadError(
            f"{path}: no `{s.CATALOG_ID}` column (its columns: {', '.join(names)}); map the"
            f' product id column with [catalog.column_map], e.g. {names[0]} = "{s.CATALOG_ID}"'
        )

    def raw_text(column: str) -> str:
        """The file's column as text (a JSON value of mixed types unquoted)."""
        name = ours[column]
        if types[name] == "JSON":
            return f"json_extract_string(\"{name}\", '$')"
        return f'cast("{name}" as varchar)'

    def text(column: str) -> str:
        if column not in ours:
            return "cast(null as varchar)"
        return f"nullif(trim({raw_text(column)}), '')"

    category = text("category")
    if settings.category_separator and "category" in ours:
        separator = quote(settings.category_separator)
        category = f"nullif(trim(split_part({category}, {separator}, 1)), '')"
    price = "cast(null as double)"
    if "price" in ours and types[ours["price"]] in NUMERIC_TYPES:  # no round trip through text
        price = f'cast("{ours["price"]}" as double)'
    elif "price" in ours:
        price = f"try_cast({raw_text('price')} as double)"
    columns = {
        s.CATALOG_ID: f"shop_id({raw_text(s.CATALOG_ID)})",
        "title": text("title"),
        "category": category,
        "price": price,
        "description": text("description"),
        "image": text("image"),
    }
    selected = ", ".join(f'{expr} as "{name}"' for name, expr in columns.items())
    return (
        f"select {selected}, {order} as file_order, row_number() over () as file_row from {source}"
    )


def _header(con: duckdb.DuckDBPyConnection, path: Path, source: str) -> list[str]:
    """A CSV file's column names as written (DuckDB renames a repeated one: `id`, `id_1`)."""
    raw = source.replace("header = true", "header = false", 1)
    row = con.execute(f"select * from {raw} limit 1").fetchone()
    return [str(name).strip() if name is not None else "" for name in row or ()]


def _refuse_twice(path: Path, header: list[str], settings: Catalog) -> None:
    """Raise CatalogLoadError when two of a file's columns would be read as one of ours: a name
    repeated, or two names that column_map maps onto the same column. Which one is meant cannot
    be told, so neither is taken (a repeated column that is not read is no matter)."""
    first: dict[str, int] = {}
    for position, name in enumerate(header):
        ours = settings.column_map.get(name, name)
        if ours not in s.CATALOG_COLUMNS:
            continue
        if ours in first:
            before = first[ours]
            raise CatalogLoadError(
                f"{path}: column {before + 1} {header[before]!r} and column {position + 1}"
                f" {name!r} would both be read as the catalog's `{ours}`; rename or remove one"
                " (or map it elsewhere with [catalog.column_map]). Nothing was loaded"
            )
        first[ours] = position


def read_catalog_files(home: Path, settings: Catalog) -> CatalogFiles:
    """Every product of the files matching `settings.files` (relative to `home`), checked.

    Raises CatalogLoadError when no file matches, a file cannot be read or lacks an id column,
    a row has no id, or an id is listed twice.
    """
    pattern = str(home / settings.files)
    paths = sorted(p for p in map(Path, glob.glob(pattern, recursive=True)) if p.is_file())
    if not paths:
        raise CatalogLoadError(f"no catalog file matches {pattern} ([catalog] files)")
    with duckdb.connect() as con:
        con.execute(SHOP_ID_MACRO).fetchall()
        union = " union all ".join(
            _select(con, path, order, settings) for order, path in enumerate(paths)
        )
        con.execute(f"create temp table listed as {union}").fetchall()
        _check(con, paths)
        products = con.sql(PRODUCTS_SQL).to_arrow_table()
    return CatalogFiles(products=products, files=paths)


def _check(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> None:
    """Raise CatalogLoadError for rows without an id, ids listed twice, or no rows at all.

    One pass counts rows, ids and distinct ids; the rows to name are looked for only when the
    counts show a problem (listing the rows of every id would cost more than the load)."""
    rows, ids, distinct = con.execute(
        f'select count(*), count("{s.CATALOG_ID}"), count(distinct "{s.CATALOG_ID}") from listed'
    ).fetchall()[0]
    if rows and rows == ids == distinct:
        return
    missing = con.execute(
        f'select file_order, file_row from listed where "{s.CATALOG_ID}" is null'
        f" order by file_order, file_row limit {PREVIEW}"
    ).fetchall()
    if missing:
        where = ", ".join(f"{paths[f].name} row {r}" for f, r in missing)
        raise CatalogLoadError(f"catalog products without an id: {where}. Nothing was loaded")
    repeated = con.execute(
        f'select "{s.CATALOG_ID}", list(file_order order by file_order, file_row),'
        " list(file_row order by file_order, file_row) from listed"
        f' group by "{s.CATALOG_ID}" having count(*) > 1 order by 1 limit {PREVIEW}'
    ).fetchall()
    if repeated:
        where = "; ".join(
            f"{product_id!r} in "
            + ", ".join(f"{paths[f].name} row {r}" for f, r in zip(files, rows, strict=True))
            for product_id, files, rows in repeated
        )
        raise CatalogLoadError(
            f"catalog product ids listed more than once: {where}. Each product must appear once"
            " (one current version per id). Nothing was loaded"
        )
    if not con.execute("select count(*) from listed").fetchall()[0][0]:
        raise CatalogLoadError(
            f"the catalog files {', '.join(p.name for p in paths)} list no products. An empty"
            " listing is refused. Nothing was loaded"
        )
