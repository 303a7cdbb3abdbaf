"""Business rules over a model's scores: one engine for the API (POST /recommendations, the GET
shortcut, /items/{id}/similar) and the batch recommendations written to the warehouse
(models_ml.batch), so offline and online lists obey the same rules.

A request's rules (Rules) come from a named, versioned rule set file (rules.toml, RuleSet: the
defaults per surface, reviewed like code) overlaid with what the request sets itself
(Rules.over). They work on every recommendable item's score (Recommender.score_rows: -inf where
the model's own repeat policy, exclude_known, leaves an item out), in this order:

1. **hard rules** (never broken): filters over the item attributes (categories in / not in,
   price range, in stock, any other attribute the catalog has: ItemTable), exclude_item_ids,
   and exclude_bought ("always", or "window": bought within bought_window_days before now);
2. **boosts**: a multiplier on the score of the items a condition (a Filters) holds for
   (several multiply; a negative score is divided, so a boost always raises an item);
3. **pins**: items at fixed positions (1 = first); a pin that breaks a hard rule or a category
   cap is not placed;
4. **diversity**: at most max_per_category items of a category (pins count), and/or maximal
   marginal relevance: each next item maximises w * relevance - (1 - w) * its highest
   similarity to the items above it (relevance: the score scaled to 0..1 over the candidates;
   similarity: the cosine of item factors, or same category = 1 for families without factors);
5. **fallback**: when the model's candidates leave fewer than n items, the gap is filled with
   the most popular items that satisfy the same rules (never one exclude_known leaves out).

Each listed item carries why it is there: "model", "boosted", "pinned" or "fallback".
Everything over items is a NumPy array over the score columns; only the diversity pass walks
its candidates one by one (a few times n of them, never the catalog).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy.sparse import csr_matrix

from recomart_core.schema import CATEGORY, ID_RULES, ITEM, PRICE

MODEL, BOOSTED, PINNED, FALLBACK = "model", "boosted", "pinned", "fallback"
Reason = Literal["model", "boosted", "pinned", "fallback"]
IN_STOCK = "in_stock"  # the item table's stock column (True unless the catalog or a PATCH says)
DAY_SECONDS = 86_400.0
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
        False, description="true: only items in stock (the catalog's or PATCH /items/{id})"
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
    when: Filters = Field(description="the items the multiplier applies to")
    multiplier: float = Field(gt=0, le=1_000, description="score x this (>1 raises, <1 lowers)")


class Pin(_Rule):
    item_id: Id = Field(**ID_RULES, description="the shop's item id")
    position: int = Field(ge=1, le=MAX_LIST, description="1 = first")


class Diversity(_Rule):
    max_per_category: int | None = Field(
        None, ge=1, le=MAX_LIST, description="at most this many items of one category"
    )
    mmr_weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description="maximal marginal relevance: the weight of relevance against novelty"
        " (1: scores only, 0: novelty only); null: off",
    )

    @property
    def empty(self) -> bool:
        return self.max_per_category is None and self.mmr_weight is None


class Rules(_Rule):
    """Everything a list must obey. In a request, the fields it sets replace the surface's
    defaults (Rules.over); the others keep them."""

    filters: Filters = Field(NO_FILTERS, description="which items may be listed")
    exclude_item_ids: list[Id] = Field(
        [], max_length=MAX_LIST, description="never these items", examples=[["sku-1"]]
    )
    exclude_bought: Literal["never", "always", "window"] = Field(
        "never",
        description="leave out items the user bought: never, always, or within"
        " bought_window_days before now",
    )
    bought_window_days: float = Field(30.0, gt=0, le=36_500)
    pins: list[Pin] = Field([], max_length=MAX_LIST, description="items at fixed positions")
    boosts: list[Boost] = Field(
        [], max_length=100, description="multipliers where a condition holds"
    )
    diversity: Diversity = Field(Diversity(), description="category caps and/or MMR")
    fill_from_popular: bool = Field(
        True, description="fill a list the rules left short with popular items (flagged)"
    )

    def over(self, base: Rules) -> Rules:
        """base with the fields this one set explicitly replacing base's."""
        chosen = self.model_fields_set & set(Rules.model_fields)  # a request's own fields too
        return base.model_copy(update={name: getattr(self, name) for name in chosen})

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


# ------------------------------------------------------------------------ the items' attributes
class ItemTable:
    """The attributes of the score columns' items (category, price, in_stock and any other
    catalog column), as arrays aligned with the columns, and the masks of Filters over them.

    Stock is the only thing that changes after construction (set_stock, PATCH /items/{id}): a
    bool array written in place, with a version that the mask cache keys on.
    """

    def __init__(
        self,
        item_ids: Sequence[str],
        attributes: pd.DataFrame | None = None,
        vectors: np.ndarray | None = None,
        categories: Sequence[str] | None = None,
    ) -> None:
        """item_ids: the shop ids of the score columns; attributes: rows keyed by ITEM (any
        columns; IN_STOCK read as bool, missing = in stock); categories: each column's category
        where attributes has none (the model's); vectors: each column's item factors (MMR)."""
        self.item_ids = np.asarray(item_ids, dtype=object)
        self.n = len(self.item_ids)
        self.column = {item: i for i, item in enumerate(self.item_ids.tolist())}
        frame = pd.DataFrame({ITEM: self.item_ids})
        if attributes is not None and len(attributes):
            extra = attributes.assign(**{ITEM: attributes[ITEM].astype(str)})
            frame = frame.merge(extra.drop_duplicates(ITEM), on=ITEM, how="left")
        if categories is not None:
            given = np.asarray(categories, dtype=object)
            current = frame[CATEGORY] if CATEGORY in frame else pd.Series([None] * self.n)
            frame[CATEGORY] = current.where(current.notna(), pd.Series(given)).to_numpy()
        stock = frame.pop(IN_STOCK) if IN_STOCK in frame else pd.Series(True, index=frame.index)
        self.in_stock = stock.fillna(True).astype(bool).to_numpy().copy()
        self.stock_version = 0
        self._numeric: dict[str, np.ndarray] = {}
        self._coded: dict[str, tuple[np.ndarray, pd.Index]] = {}
        for name in frame.columns.drop(ITEM):
            column = frame[name]
            if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
                self._numeric[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                codes, uniques = pd.factorize(column.astype(object).where(column.notna(), None))
                self._coded[name] = (codes.astype(np.int32), pd.Index(uniques))
        self.category_codes = (
            self._coded[CATEGORY][0] if CATEGORY in self._coded else np.full(self.n, -1, np.int32)
        )
        self.vectors = self._unit(vectors)
        self._masks: dict[tuple[str, int], np.ndarray] = {}

    @staticmethod
    def _unit(vectors: np.ndarray | None) -> np.ndarray | None:
        if vectors is None or vectors.ndim != 2 or vectors.shape[1] == 0:
            return None
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)

    @property
    def attribute_names(self) -> list[str]:
        return sorted([*self._numeric, *self._coded, IN_STOCK])

    def columns_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """The columns of the known ones of these shop ids."""
        return np.array([self.column[i] for i in item_ids if i in self.column], dtype=np.int64)

    def set_stock(self, item_id: str, in_stock: bool) -> None:
        """KeyError for an item not in the table."""
        self.in_stock[self.column[item_id]] = in_stock
        self.stock_version += 1

    def reset_stock(self, in_stock: np.ndarray | None = None) -> None:
        """Every item in stock (or the given bool per column)."""
        self.in_stock[:] = True if in_stock is None else in_stock
        self.stock_version += 1

    def mask(self, filters: Filters) -> np.ndarray:
        """Bool per column: the items the filters let through (a cached array: never write it)."""
        key = (filters.model_dump_json(), self.stock_version if filters.in_stock else -1)
        found = self._masks.get(key)
        if found is None:
            found = self._mask(filters)
            if len(self._masks) >= 256:
                self._masks.clear()
            self._masks[key] = found
        return found

    def _mask(self, filters: Filters) -> np.ndarray:
        keep = np.ones(self.n, dtype=bool)
        if filters.categories is not None:
            keep &= self._isin(CATEGORY, filters.categories)
        if filters.exclude_categories:
            keep &= ~self._isin(CATEGORY, filters.exclude_categories)
        if filters.price_min is not None or filters.price_max is not None:
            price = self._numeric.get(PRICE, np.full(self.n, np.nan))
            low = -np.inf if filters.price_min is None else filters.price_min
            high = np.inf if filters.price_max is None else filters.price_max
            keep &= (price >= low) & (price <= high)  # NaN (no price) fails both
        if filters.in_stock:
            keep &= self.in_stock
        for name, values in filters.attributes.items():
            if name == IN_STOCK:
                keep &= np.isin(self.in_stock, [bool(v) for v in values])
            else:
                keep &= self._isin(name, values)
        return keep

    def _isin(self, name: str, values: Sequence[Value]) -> np.ndarray:
        if name in self._numeric:
            numbers = [float(v) for v in values if _is_number(v)]
            return np.isin(self._numeric[name], numbers)
        if name not in self._coded:
            raise UnknownAttribute(
                f"unknown item attribute {name!r}: the catalog has"
                f" {', '.join(self.attribute_names)}"
            )
        codes, uniques = self._coded[name]
        wanted = uniques.get_indexer(pd.Index([str(v) for v in values], dtype=object))
        wanted = wanted[wanted >= 0]
        if not len(wanted):
            return np.zeros(self.n, dtype=bool)
        return np.isin(codes, wanted)


class UnknownAttribute(ValueError):
    """A filter on an attribute the catalog does not have (the API answers 422)."""


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------------- the engine
@dataclass(frozen=True)
class Ranked:
    """One rule-abiding list: score columns, scores (after boosts; popularity for fallback
    items) and reasons, best first."""

    columns: np.ndarray
    scores: np.ndarray
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.columns)


def rank(
    scores: np.ndarray,
    table: ItemTable,
    rules: Rules,
    n: int,
    *,
    popularity: np.ndarray,
    bought: csr_matrix | None = None,
    now: float | None = None,
    listable: np.ndarray | None = None,
) -> list[Ranked]:
    """Each row's list of up to n items under the rules (module docstring).

    scores: (rows, table.n) float32, -inf where the model's repeat policy (or the family)
    leaves an item out: such an item is never listed, not even as a fallback; popularity:
    (table.n,) the fallback order; bought: (rows, table.n) CSR of each row's last purchase
    times (seconds), read when exclude_bought is not "never"; now: seconds since the epoch
    (the window's end); listable: (rows, table.n) bool, what may be listed at all before
    the rules (default: the finite scores; /similar lists any item but the query's, the items
    its similarity leaves out as fallbacks)."""
    scores = np.atleast_2d(scores)
    allowed = table.mask(rules.filters).copy()
    excluded = table.columns_of(rules.exclude_item_ids)
    allowed[excluded] = False
    blocked = _bought(rules, bought, now, scores.shape)
    usable = np.where(allowed[None, :], scores, -np.inf).astype(np.float32, copy=False)
    if blocked is not None:
        usable[blocked.row, blocked.col] = -np.inf
    multiplier = np.ones(table.n, dtype=np.float32)
    for boost in rules.boosts:
        multiplier[table.mask(boost.when)] *= np.float32(boost.multiplier)
    boosted = multiplier != 1
    if boosted.any():
        usable = np.where(usable >= 0, usable * multiplier, usable / multiplier)
    order = np.lexsort((np.arange(table.n), -popularity))  # the fallback order, best first
    out = []
    for row in range(len(usable)):
        base = np.isfinite(scores[row]) if listable is None else listable[row]
        hard = allowed & base  # what may be listed at all
        if blocked is not None:
            hard[blocked.col[blocked.row == row]] = False
        out.append(_rank_row(usable[row], hard, boosted, order, popularity, table, rules, n))
    return out


def _bought(rules: Rules, bought: csr_matrix | None, now: float | None, shape: tuple[int, int]):
    """The (row, column) pairs exclude_bought leaves out, as a COO matrix (None: none)."""
    if rules.exclude_bought == "never" or bought is None or bought.nnz == 0:
        return None
    coo = bought.tocoo()
    if rules.exclude_bought == "window":
        if now is None:
            raise ValueError("exclude_bought = window needs the time now")
        keep = coo.data >= now - rules.bought_window_days * DAY_SECONDS
        coo = csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=shape).tocoo()
    return coo


def _rank_row(
    usable: np.ndarray,
    hard: np.ndarray,
    boosted: np.ndarray,
    fallback_order: np.ndarray,
    popularity: np.ndarray,
    table: ItemTable,
    rules: Rules,
    n: int,
) -> Ranked:
    cap = rules.diversity.max_per_category
    per_category: dict[int, int] = {}
    cats = table.category_codes

    def fits(column: int) -> bool:
        return cap is None or per_category.get(int(cats[column]), 0) < cap

    def take(column: int) -> None:
        if cap is not None:
            per_category[int(cats[column])] = per_category.get(int(cats[column]), 0) + 1

    # pins first: in position order, a pin that breaks a hard rule or a cap is left out
    pinned: list[tuple[int, int]] = []  # (position, column)
    seen: set[int] = set()
    for pin in sorted(rules.pins, key=lambda p: p.position):
        column = table.column.get(pin.item_id)
        if column is None or column in seen or not hard[column] or not fits(column):
            continue
        if pin.position > n:
            continue
        seen.add(column)
        take(column)
        pinned.append((pin.position, column))
    room = n - len(pinned)
    chosen: list[int] = []
    chosen_scores: list[float] = []
    reasons: list[str] = []
    if room > 0:
        finite = np.isfinite(usable)
        if seen:
            finite[list(seen)] = False
        candidates = np.flatnonzero(finite)
        depth = min(len(candidates), 4 * n + 16)
        while True:
            top = _best(usable, candidates, depth)
            picked = _pick(top, usable, room, table, rules, fits, take, chosen)
            if len(chosen) >= room or depth >= len(candidates):
                break
            chosen.clear()
            per_category.clear()
            for _, column in pinned:
                take(column)
            depth = min(len(candidates), depth * 4)
        del picked
        chosen_scores = [float(usable[c]) for c in chosen]
        reasons = [BOOSTED if boosted[c] else MODEL for c in chosen]
    if len(chosen) < room and rules.fill_from_popular:
        taken = set(chosen) | seen
        for column in fallback_order[hard[fallback_order]].tolist():
            if len(chosen) >= room:
                break
            if column in taken or not fits(column):
                continue
            take(column)
            chosen.append(column)
            chosen_scores.append(float(popularity[column]))
            reasons.append(FALLBACK)
    columns, out_scores, out_reasons = list(chosen), list(chosen_scores), list(reasons)
    for position, column in pinned:  # in position order: earlier pins never move later ones
        at = min(position - 1, len(columns))
        columns.insert(at, column)
        out_scores.insert(at, float(usable[column]) if np.isfinite(usable[column]) else 0.0)
        out_reasons.insert(at, PINNED)
    return Ranked(np.array(columns[:n], dtype=np.int64), np.array(out_scores[:n]), out_reasons[:n])


def _best(usable: np.ndarray, candidates: np.ndarray, depth: int) -> np.ndarray:
    """The depth best candidates, best first (ties: lower column)."""
    if depth < len(candidates):
        values = usable[candidates]
        kth = np.partition(-values, depth - 1)[depth - 1]
        candidates = candidates[-values <= kth]
    return candidates[np.lexsort((candidates, -usable[candidates]))]


def _pick(top, usable, room, table, rules, fits, take, chosen) -> int:
    """Fill chosen (in place) from top, best first, under the category cap, or by maximal
    marginal relevance when mmr_weight is set; the number picked."""
    w = rules.diversity.mmr_weight
    if w is None:
        for column in top.tolist():
            if len(chosen) >= room:
                break
            if fits(column):
                take(column)
                chosen.append(column)
        return len(chosen)
    values = usable[top].astype(np.float64)
    low, high = values.min(initial=0.0), values.max(initial=0.0)
    relevance = (values - low) / (high - low) if high > low else np.ones(len(values))
    vectors = table.vectors
    if vectors is not None:
        candidate_vectors = vectors[top]
    cats = table.category_codes[top]
    similarity = np.full(len(top), -np.inf)  # highest similarity to what is chosen so far
    free = np.ones(len(top), dtype=bool)
    while len(chosen) < room and free.any():
        gain = np.where(free, w * relevance - (1 - w) * np.maximum(similarity, 0.0), -np.inf)
        best = int(np.argmax(gain))
        free[best] = False
        column = int(top[best])
        if not fits(column):
            continue
        take(column)
        chosen.append(column)
        if vectors is not None:
            sim = candidate_vectors @ candidate_vectors[best]
        else:
            sim = (cats == cats[best]).astype(np.float64)
        similarity = np.maximum(similarity, sim)
    return len(chosen)
