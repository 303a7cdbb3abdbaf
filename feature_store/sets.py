"""What the store knows of a feature set: its metadata, where it lives, where it comes from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CURRENT = "current"  # the version name of a dbt-built feature set (its history is by time)
DBT = "dbt"  # FeatureSet.source of a mart built by dbt
SAVED = "saved"  # FeatureSet.source of a set saved or registered through the store


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str | None
    description: str = ""


@dataclass(frozen=True)
class FeatureSet:
    """One feature set: its metadata, where it lives and where it comes from."""

    name: str
    description: str
    entity: str | None
    join_keys: tuple[str, ...]
    columns: tuple[Column, ...]
    owner: str | None
    tags: tuple[str, ...]
    source: str  # DBT (a mart) or SAVED (save_feature / register_feature)
    relation: str | None  # [catalog.]schema.table of the current data; None for metadata only
    versions: tuple[str, ...]
    history: str | None = None  # schema.view of its history (valid_from, valid_to), if any
    upstream: tuple[str, ...] = ()  # direct parents (dbt nodes or registered names)
    sources: tuple[str, ...] = ()  # the raw sources at the root of the lineage
    exposures: tuple[str, ...] = ()  # what consumes it (dbt exposures)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
