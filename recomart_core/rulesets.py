"""The shop's business rules as data: what a list must obey (Rules: filters, exclusions, pins,
boosts, diversity) and the rule set file that names them per surface (RuleSet, rules.toml,
reviewed like code). The settings side, read by every stage that applies or checks them: the
engine that applies them is models_ml.rules; dbt's test of the batch recommendations receives
the default surface as a var (dbt_project.build).
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recomart_core.schema import ID_RULES

Reason = Literal["model", "boosted", "pinned", "fallback"]
MAX_LIST = 1_000  # pins and exclusions per request at most this many (the API's bounds)
NO_RULES_NAME = "none"  # the rule set served when the home has no rules file
Value = str | float | bool
Id = str


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filters(_Rule):
    """Which items may be listed at all (every condition must hold; an item without the
    attribute fails a condition on it)."""

    categories: list[str] | None = Field(
        None, description="only items of these categories", examples=[["Books", "Games"]]
    )
    exclude_categories: list[str] = Field(
        [], description="never items of these categories", examples=[["Gift cards"]]
    )
    price_min: float | None = Field(None, description="lowest price (inclusive)", examples=[5])
    price_max: float | None = Field(None, description="highest price (inclusive)", examples=[80])
    in_stock: bool = Field(
        False,
        description="true: only items in stock (the catalog's or PATCH /items/{id})",
        examples=[True],
    )
    attributes: dict[str, list[Value]] = Field(
        {},
        description="any other catalog attribute: its allowed values",
        examples=[{"brand": ["acme", "globex"]}],
    )

    @property
    def empty(self) -> bool:
        return self == NO_FILTERS


NO_FILTERS = Filters()


class Boost(_Rule):
    when: Filters = Field(
        description="the items the multiplier applies to", examples=[{"categories": ["Sale"]}]
    )
    multiplier: float = Field(
        gt=0, le=1_000, description="score x this (>1 raises, <1 lowers)", examples=[1.5]
    )


class Pin(_Rule):
    item_id: Id = Field(**ID_RULES, description="the shop's item id", examples=["sku-1"])
    position: int = Field(ge=1, le=MAX_LIST, description="1 = first", examples=[1])


class Diversity(_Rule):
    max_per_category: int | None = Field(
        None,
        ge=1,
        le=MAX_LIST,
        description="at most this many items of one category",
        examples=[3],
    )
    mmr_weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description="maximal marginal relevance: the weight of relevance against novelty"
        " (1: scores only, 0: novelty only); null: off",
        examples=[0.7],
    )

    @property
    def empty(self) -> bool:
        return self.max_per_category is None and self.mmr_weight is None


class Rules(_Rule):
    """Everything a list must obey. In a request, the fields it sets replace the surface's
    defaults (Rules.over; filters and diversity field by field); the others keep them."""

    filters: Filters = Field(
        NO_FILTERS,
        description="which items may be listed",
        examples=[{"categories": ["Books"], "price_max": 80, "in_stock": True}],
    )
    exclude_item_ids: list[Id] = Field(
        [], max_length=MAX_LIST, description="never these items", examples=[["sku-1"]]
    )
    exclude_bought: Literal["never", "always", "window"] = Field(
        "never",
        description="leave out items the user bought: never, always, or within"
        " bought_window_days before now",
        examples=["window"],
    )
    bought_window_days: float = Field(
        30.0, gt=0, le=36_500, description="exclude_bought = window: days", examples=[30]
    )
    pins: list[Pin] = Field(
        [],
        max_length=MAX_LIST,
        description="items at fixed positions",
        examples=[[{"item_id": "sku-1", "position": 1}]],
    )
    boosts: list[Boost] = Field(
        [],
        max_length=100,
        description="multipliers where a condition holds",
        examples=[[{"when": {"categories": ["Sale"]}, "multiplier": 1.5}]],
    )
    diversity: Diversity = Field(
        Diversity(), description="category caps and/or MMR", examples=[{"max_per_category": 3}]
    )
    fill_from_popular: bool = Field(
        True,
        description="fill a list the rules left short with popular items (flagged)",
        examples=[True],
    )

    def over(self, base: Rules) -> Rules:
        """base with the fields this one set explicitly replacing base's; within filters and
        diversity, field by field (a request's categories keep the surface's in_stock)."""
        chosen = self.model_fields_set & set(Rules.model_fields)  # a request's own fields too
        update = {}
        for name in chosen:
            value = getattr(self, name)
            if name in ("filters", "diversity"):
                value = _overlay(value, getattr(base, name))
            update[name] = value
        return base.model_copy(update=update)

    @property
    def empty(self) -> bool:
        """True when the rules change no list (the model's own list is the answer)."""
        return (
            self.filters.empty
            and not self.exclude_item_ids
            and self.exclude_bought == "never"
            and not self.pins
            and not self.boosts
            and self.diversity.empty
        )


NO_RULES = Rules()


def _overlay(mine: _Rule, base: _Rule) -> _Rule:
    """base with the fields mine set explicitly."""
    return base.model_copy(update={name: getattr(mine, name) for name in mine.model_fields_set})


class RuleSet(_Rule):
    """A rule set file: its name and version, the surface used when a request names none, and
    the rules of each surface (home page, product page, basket, email, ...)."""

    name: str = Field(min_length=1, max_length=100)
    version: str = Field(min_length=1, max_length=100)
    default_surface: str = "default"
    surfaces: dict[str, Rules] = {"default": NO_RULES}
    digest: str = Field("", description="sha256 of the file (the first 12 hex digits)")

    def model_post_init(self, _: Any) -> None:
        if self.default_surface not in self.surfaces:
            raise ValueError(
                f"default_surface {self.default_surface!r} is not one of the surfaces"
                f" {sorted(self.surfaces)}"
            )

    def surface(self, name: str | None) -> Rules:
        """The rules of a surface (the default one for None); KeyError naming the surfaces."""
        key = name or self.default_surface
        if key not in self.surfaces:
            raise KeyError(
                f"unknown surface {key!r}: rule set {self.name} {self.version} has"
                f" {', '.join(sorted(self.surfaces))}"
            )
        return self.surfaces[key]

    def describe(self, surface: str | None) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "surface": surface or self.default_surface,
        }


NO_RULE_SET = RuleSet(name=NO_RULES_NAME, version="0")


class RuleSetError(ValueError):
    """A rule set file that cannot be read; the message names the file and the field."""


def load_rule_set(path: str | Path) -> RuleSet:
    """The rule set in a TOML file (NO_RULE_SET when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return NO_RULE_SET
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode())
        return RuleSet(**data, digest=hashlib.sha256(raw).hexdigest()[:12])
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RuleSetError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise RuleSetError(f"{path}: {problems}") from None
    except (ValueError, TypeError) as exc:
        raise RuleSetError(f"{path}: {exc}") from None
