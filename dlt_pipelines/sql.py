"""SQL pieces the pipelines use: string literals, identifiers and the shop id macro (DuckDB)."""

# An id as the shop wrote it. A decimal point followed by zeros only ('17850.0', as float-typed
# exports write ids) is dropped; the check runs only on rows with a decimal point.
SHOP_ID_MACRO = r"""
create or replace temp macro shop_id(text) as
case
    when contains(text, '.') and regexp_full_match(trim(text), '-?[0-9]+\.0+')
        then split_part(trim(text), '.', 1)
    else nullif(trim(text), '')
end
"""


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL identifier (a column or table name)."""
    return '"' + name.replace('"', '""') + '"'
