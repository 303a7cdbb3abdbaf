"""Business rules over a model's scores: one engine for the API (POST /recommendations, the GET
shortcut, /items/{id}/similar) and the batch recommendations written to the warehouse
(models_ml.batch), so offline and online lists obey the same rules.

A request's rules (recomart_core.rulesets.Rules) come from a named, versioned rule set file
(rules.toml, RuleSet: the defaults per surface, reviewed like code) overlaid with what the
request sets itself (Rules.over). They work on every recommendable item's score
(Recommender.score_rows: -inf where the model's own repeat policy, exclude_known, leaves an
item out), in this order:

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from recomart_core.rulesets import Filters, Rules, Value
from recomart_core.schema import CATEGORY, ITEM, PRICE

MODEL, BOOSTED, PINNED, FALLBACK = "model", "boosted", "pinned", "fallback"
IN_STOCK = "in_stock"  # the item table's stock column (True unless the catalog or a PATCH says)
DAY_SECONDS = 86_400.0


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
        popularity: np.ndarray | None = None,
    ) -> None:
        """item_ids: the shop ids of the score columns; attributes: rows keyed by ITEM (any
        columns; IN_STOCK read as bool, missing = in stock); categories: each column's category
        where attributes has none (the model's); vectors: each column's item factors (MMR);
        popularity: each column's recent popularity, the fallback's order (default: none,
        the column order)."""
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
        # each column's category as a code into categories (-1: none)
        self.category_codes, self.categories = self._coded.get(
            CATEGORY, (np.full(self.n, -1, np.int32), pd.Index([], dtype=object))
        )
        self.vectors = self._unit(vectors)
        self.popularity = np.zeros(self.n) if popularity is None else np.asarray(popularity)
        # the fallback's order, best first (ties: the lower column), sorted once
        self.fallback_order = np.lexsort((np.arange(self.n), -self.popularity))
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
    bought: csr_matrix | None = None,
    now: float | None = None,
    listable: np.ndarray | None = None,
    head: bool = False,
) -> list[Ranked]:
    """Each row's list of up to n items under the rules (module docstring).

    scores: (rows, table.n) float32, -inf where the model's repeat policy (or the family)
    leaves an item out: such an item is never listed, not even as a fallback (in the
    order of table.popularity); bought: (rows, table.n) CSR of each row's last purchase
    times (seconds), read when exclude_bought is not "never"; now: seconds since the epoch
    (the window's end); listable: (rows, table.n) bool, what may be listed at all before
    the rules (default: the finite scores; /similar lists any item but the query's, the items
    its similarity leaves out as fallbacks); head: the finite scores are only the head of
    the row's ranking (a precomputed top list): MMR then answers only when its candidates lie
    within the head, else with an empty list (the caller scores every item)."""
    scores = np.atleast_2d(scores)
    allowed = table.mask(rules.filters).copy()
    excluded = table.columns_of(rules.exclude_item_ids)
    allowed[excluded] = False
    blocked = _bought(rules, bought, now)
    usable = np.where(allowed[None, :], scores, -np.inf).astype(np.float32, copy=False)
    if blocked is not None:
        pairs = blocked.tocoo()
        usable[pairs.row, pairs.col] = -np.inf
    multiplier = np.ones(table.n, dtype=np.float32)
    for boost in rules.boosts:
        multiplier[table.mask(boost.when)] *= np.float32(boost.multiplier)
    boosted = multiplier != 1
    if boosted.any():
        usable = np.where(usable >= 0, usable * multiplier, usable / multiplier)
    out = []
    for row in range(len(usable)):
        base = np.isfinite(scores[row]) if listable is None else listable[row]
        hard = allowed & base  # what may be listed at all
        if blocked is not None:  # this row's blocked columns: a slice of the CSR
            hard[blocked.indices[blocked.indptr[row] : blocked.indptr[row + 1]]] = False
        out.append(_rank_row(usable[row], hard, boosted, table, rules, n, head))
    return out


def _bought(rules: Rules, bought: csr_matrix | None, now: float | None) -> csr_matrix | None:
    """The (row, column) pairs exclude_bought leaves out, as the stored cells of a CSR matrix
    (None: none)."""
    if rules.exclude_bought == "never" or bought is None or bought.nnz == 0:
        return None
    blocked = csr_matrix(bought, copy=True)
    if rules.exclude_bought == "window":
        if now is None:
            raise ValueError("exclude_bought = window needs the time now")
        blocked.data = blocked.data >= now - rules.bought_window_days * DAY_SECONDS
        blocked.eliminate_zeros()
    return blocked


def _rank_row(
    usable: np.ndarray,
    hard: np.ndarray,
    boosted: np.ndarray,
    table: ItemTable,
    rules: Rules,
    n: int,
    head: bool = False,
) -> Ranked:
    cap = rules.diversity.max_per_category
    mmr_on_head = head and rules.diversity.mmr_weight is not None
    nothing = Ranked(np.zeros(0, dtype=np.int64), np.zeros(0), [])
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
        if mmr_on_head and depth < 4 * n + 16:
            return nothing  # MMR's candidates reach beyond the head
        while True:
            top = _best(usable, candidates, depth)
            _pick(top, usable, room, table, rules, fits, take, chosen)
            if len(chosen) >= room or depth >= len(candidates):
                break
            if mmr_on_head:
                return nothing  # a deeper MMR pass would reach beyond the head
            chosen.clear()
            per_category.clear()
            for _, column in pinned:
                take(column)
            depth = min(len(candidates), depth * 4)
        chosen_scores = [float(usable[c]) for c in chosen]
        reasons = [BOOSTED if boosted[c] else MODEL for c in chosen]
    if len(chosen) < room and rules.fill_from_popular:
        taken = set(chosen) | seen
        order = table.fallback_order
        for column in order[hard[order]].tolist():
            if len(chosen) >= room:
                break
            if column in taken or not fits(column):
                continue
            take(column)
            chosen.append(column)
            chosen_scores.append(float(table.popularity[column]))
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


def _pick(top, usable, room, table, rules, fits, take, chosen) -> None:
    """Fill chosen (in place) from top, best first, under the category cap, or by maximal
    marginal relevance when mmr_weight is set."""
    w = rules.diversity.mmr_weight
    if w is None:
        for column in top.tolist():
            if len(chosen) >= room:
                break
            if fits(column):
                take(column)
                chosen.append(column)
        return
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
