"""The feature store's error, and the checks every name and version passes before any SQL.

Names are lowercase identifiers, versions short tokens; both are validated, then quoted, before
they are written into SQL. Values (times, versions) are bound as parameters.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd

# matched whole (fullmatch): `$` alone would let a trailing newline through
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
IDENTIFIER = re.compile(r"[A-Za-z0-9_.\-]+")


class FeatureStoreError(ValueError):
    """A name, version or argument the store cannot serve; the message says what exists."""


def check_name(name: Any, what: str = "feature name") -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise FeatureStoreError(
            f"invalid {what} {name!r}: use a lowercase identifier (letters, digits, underscores)"
        )
    return name


def check_version(version: Any) -> str:
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise FeatureStoreError(
            f"invalid version {version!r}: letters, digits, '_', '.', '-', at most 63 characters"
        )
    return version


def quote(*parts: str) -> str:
    """A qualified identifier, each part validated then double-quoted."""
    for part in parts:
        if not isinstance(part, str) or not IDENTIFIER.fullmatch(part):
            raise FeatureStoreError(f"invalid identifier {part!r}")
    return ".".join(f'"{part}"' for part in parts)


def utc_naive(value: datetime | str | pd.Timestamp) -> datetime:
    """A point in time as a naive UTC datetime (the warehouse's timestamps are UTC, no zone)."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()
