"""ServingModel: one loaded champion, everything the request path needs computed at load.

At load: the cold-start list (recent popularity, what an unknown user gets), each known user's
path (model / blend / popular) as one byte, and the item metadata (item_id as the shop's id,
title, category, price) as a dict per item code. Users are found through the model's user
vocabulary (a hash index built once), not a dict of their own. Up to precompute_max_users
users, every known user's top-max_k list (exclude_known true and false: the model's repeat
policy decides what true leaves out) is computed at load and a request is a lookup, a slice
and a list of dicts: no DuckDB, no MLflow, no matrix product.
Lists of length k are the first k of the max_k list (the model ranks by score, ties by item
index, whatever k is).

Above precompute_max_users users, a list is scored per request by the model itself
(recommend_batch for one user): what does not depend on the user is prepared once at load
(Recommender.prepare), so a request costs one user's scores (x_u @ W + U[u] . V[j] over the
items) and a partial sort, nothing O(n_users). Similar items the same way.

A user with fresh events (POST /events, serving.holder.FreshEvents) is served through the rules
path with their scores folded in from their history plus those events
(Recommender.score_history: ALS's factors re-solved, EASE's / item-kNN's x_u @ W of the updated
row, BPR's mean of item factors), a visitor's from the events alone: one user's scores and the
rules, never a retraining. Their purchases and what the repeat policy excludes are known for
exclude_known; their purchases count for exclude_bought.

A ServingModel is never changed after construction, but for its items' stock (table.in_stock,
PATCH /items/{id} through the holder): the holder swaps whole objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from models_ml import rules as engine
from models_ml.ids import UNKNOWN
from models_ml.ranking import PAD_ITEM
from models_ml.recommender import BLEND, MODEL, POPULAR, Recommender
from models_ml.rules import ItemTable, Ranked
from recomart_core.rulesets import Rules
from recomart_core.schema import CATEGORY, ITEM, PRICE, PURCHASE, TITLE
from serving.fresh import Fresh

STRATEGY_TEXT = {
    MODEL: "{description}",  # the family's own words (Recommender.description)
    BLEND: "cold start, few interactions: {model} blended with the user's categories",
    POPULAR: "cold start, no history: recent popularity (time-decayed interaction counts)",
}
REPEAT_TEXT = ", blended with the user's own items that may come back (repeat_weight {w:g})"
FOLD_TEXT = "; {n} events since training folded in ({how})"
EXPLAIN_DRIVERS = 3  # driving items listed per recommendation when explain=true


@dataclass(frozen=True)
class ModelInfo:
    """What GET /model reports about the loaded model."""

    name: str
    version: str
    alias: str
    run_id: str | None
    trained_at: str | None
    data_cutoff: str | None  # the newest interaction the model saw
    holdout_cutoff: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    source: str | None = None
    loaded_at: str | None = None
    item_metadata: str = "model artifact"


PATHS = (MODEL, BLEND, POPULAR)  # a user's path code is its position here
UNKNOWN_ROW = -1


class ServingModel:
    """A recommender plus its precomputed answers; read-only once built. Ids in and out of the
    public methods are the shop's (str)."""

    def __init__(
        self,
        model: Recommender,
        items: pd.DataFrame | None,
        info: ModelInfo,
        max_k: int = 100,
        precompute_max_users: int = 100_000,
    ) -> None:
        self.model = model
        self.info = info
        self.max_k = max_k
        self._user_codes = np.ascontiguousarray(model.user_ids, dtype=np.int64)
        self._users = model.users  # the vocabulary: its index finds a shop id's code
        self.user_ids = self._users.decode(self._user_codes)  # shop ids of the known users
        self.n_users = len(self.user_ids)
        self.n_items = len(model.item_ids)
        item_names = model.items.decode(model.item_ids).tolist()
        self._item_codes = dict(zip(item_names, model.item_ids.tolist(), strict=True))
        self._meta = _metadata(model, item_names, items)
        self.family, self.family_title = model.family, model.title
        self.similarity_text = model.similarity_text
        weight = model.repeat_weight
        self._descriptions = {
            path: text.format(model=model.title, description=model.description)
            + (REPEAT_TEXT.format(w=weight) if weight > 0 and path != POPULAR else "")
            for path, text in STRATEGY_TEXT.items()
        }
        model.prepare()  # what scoring and similar items need, built now, not by a request
        paths = model.user_paths(self._user_codes)
        self._paths = np.zeros(self.n_users, dtype=np.int8)
        for code, path in enumerate(PATHS):
            self._paths[paths == path] = code
        del paths
        rec_codes = model.rec_item_codes
        # the rules' view of the items (models_ml.rules): attributes by score column
        self.table = ItemTable(
            model.items.decode(rec_codes).tolist(),
            items,
            vectors=model.rec_item_vectors,
            categories=[self._meta[code]["category"] for code in rec_codes.tolist()],
            popularity=model.rec_popularity,
        )
        self._rec_codes = rec_codes
        pop_ids, pop_scores = model.recommend_batch([UNKNOWN], max_k)
        self._popular = _pairs(pop_ids[0], pop_scores[0])
        kept = pop_ids[0] != PAD_ITEM  # the same list as arrays (the rules' head)
        self._popular_arrays = (pop_ids[0][kept], pop_scores[0][kept])
        self._lists: dict[bool, tuple[np.ndarray, np.ndarray]] | None = None
        if self.n_users <= precompute_max_users:
            self._lists = {
                exclude: model.recommend_batch(self._user_codes, max_k, exclude_known=exclude)
                for exclude in (True, False)
            }

    @property
    def precomputed(self) -> bool:
        """True when every known user's list was computed at load (else: per request)."""
        return self._lists is not None

    # ---------------------------------------------------------------- lookups
    def user_row(self, user_id: str) -> int:
        """Index of user_id in user_ids, or -1 for a user the model does not know."""
        code = self._users.code(user_id)
        if code < 0:
            return UNKNOWN_ROW
        row = int(np.searchsorted(self._user_codes, code))
        if row < self.n_users and self._user_codes[row] == code:
            return row
        return UNKNOWN_ROW  # in the vocabulary, but without factors

    def has_item(self, item_id: str) -> bool:
        return item_id in self._item_codes

    def can_list(self, item_id: str) -> bool:
        """True for an item the model may recommend (a column of the rules' item table)."""
        return item_id in self.table.column

    def item(self, item_id: str) -> dict[str, Any]:
        """{item_id, title, category, price} of a known item."""
        return dict(self._meta[self._item_codes[item_id]])

    # ----------------------------------------------------------- the answers
    def recommend(
        self, user_id: str, k: int, exclude_known: bool = True, explain: bool = False
    ) -> dict[str, Any]:
        """user_id's top k: {user_id, strategy (model / blend / popular), family,
        cold_start, strategy_description, items: [{rank, item_id, score, title, category,
        price[, because, similar_liked_items]}]}.
        """
        row = self.user_row(user_id)
        if row < 0:
            strategy, pairs = POPULAR, self._popular[:k]
        else:
            strategy = PATHS[self._paths[row]]
            if self._lists is not None:
                ids, scores = self._lists[exclude_known]
                pairs = _pairs(ids[row, :k], scores[row, :k])
            else:
                ids, scores = self.model.recommend_batch(
                    self._user_codes[row : row + 1], k, exclude_known
                )
                pairs = _pairs(ids[0], scores[0])
        items = []
        for rank, (code, score) in enumerate(pairs, start=1):
            entry = {"rank": rank, "score": score, "reason": MODEL, **self._meta[code]}
            if explain:
                entry.update(self._explain(user_id, entry["item_id"], strategy))
            items.append(entry)
        return self._answer(user_id, strategy, items)

    def recommend_with_rules(
        self,
        user_id: str,
        k: int,
        rules: Rules,
        exclude_known: bool = True,
        now: float | None = None,
        fresh: Fresh | None = None,
    ) -> dict[str, Any]:
        """user_id's top k under rules (models_ml.rules): recommend's answer, every item with
        its reason (model, boosted, pinned, fallback). Scores every recommendable item for
        the user (Recommender.score_rows), then the rules; now: seconds since the epoch (the
        exclude_bought window's end); fresh: the user's events since start (POST /events),
        folded into the scores (the module docstring; fold_in says how)."""
        row = self.user_row(user_id)
        code = self._user_codes[row] if row >= 0 else UNKNOWN
        if fresh is not None and len(fresh):
            return self._folded(user_id, code, k, rules, exclude_known, now, fresh)
        bought = None
        if rules.exclude_bought != "never" and row >= 0:
            bought = self.model.purchase_times([code])
        ranked = self._from_precomputed(row, code, k, rules, exclude_known, bought, now)
        if ranked is None:  # every item scored for the user
            paths, scores = self.model.score_rows([code], exclude_known)
            ranked = engine.rank(scores, self.table, rules, k, bought=bought, now=now)[0]
            strategy = str(paths[0])
        else:
            strategy = POPULAR if row < 0 else PATHS[self._paths[row]]
        return self._answer(user_id, strategy, self._listed(ranked))

    def _from_precomputed(
        self, row: int, code: int, k: int, rules: Rules, exclude_known: bool, bought, now
    ) -> Ranked | None:
        """The rules over the user's precomputed top-max_k list alone (the cold-start list for
        an unknown user): the list scoring every item would give whenever the rules fill k from
        it, since that list is the head of every item in the same order and the rules pick in
        that order (maximal marginal relevance too, when its candidates lie within the head:
        models_ml.rules.rank's head). None (score every item) when lists are not precomputed,
        when a boost can reorder beyond the head, when a pin may need the score of an item
        outside it, or when the head runs out."""
        if self._lists is None or rules.boosts or rules.pins:
            return None
        if row < 0:
            codes, values = self._popular_arrays
        else:
            ids, scores = self._lists[exclude_known]
            kept = ids[row] != PAD_ITEM
            codes, values = ids[row][kept], scores[row][kept]
        top = np.full((1, self.table.n), -np.inf, dtype=np.float32)
        columns = self._rec_column(codes)
        top[0, columns[columns >= 0]] = values[columns >= 0]
        listable = np.ones((1, self.table.n), dtype=bool)  # pins: all but what exclude_known
        if row >= 0 and exclude_known:  # leaves out
            listable[0, self.model.excluded_columns([code]).indices] = False
        own = rules.model_copy(update={"fill_from_popular": False})
        ranked = engine.rank(
            top, self.table, own, k, bought=bought, now=now, listable=listable, head=True
        )[0]  # fmt: skip
        return ranked if len(ranked) == k else None

    def _folded(
        self,
        user_id: str,
        code: int,
        k: int,
        rules: Rules,
        exclude_known: bool,
        now: float | None,
        fresh: Fresh,
    ) -> dict[str, Any]:
        """recommend_with_rules for a user with fresh events: their history plus the events
        scored by Recommender.score_history, the rules over that."""
        model = self.model
        items = model.items.encode(list(fresh.item_ids))
        types = np.asarray(fresh.event_types, dtype=object)
        scores, how = model.score_history(
            code, items, model.event_confidence(types),
            exclude_ids=items[model.excluded_events(types)], exclude_known=exclude_known,
        )  # fmt: skip
        bought = None
        if rules.exclude_bought != "never":
            bought = self._bought(code, items, types, np.asarray(fresh.times))
        ranked = engine.rank(scores[None, :], self.table, rules, k, bought=bought, now=now)[0]
        path = str(model.user_paths([code])[0])
        strategy = MODEL if how is not None else path
        description = self._descriptions[strategy]
        if how is not None:
            description += FOLD_TEXT.format(n=len(fresh), how=how)
        return self._answer(
            user_id, strategy, self._listed(ranked), path, description, how, len(fresh)
        )

    def _answer(
        self,
        user_id: str,
        strategy: str,
        items: list[dict[str, Any]],
        path: str | None = None,
        description: str | None = None,
        fold_in: str | None = None,
        fresh_events: int = 0,
    ) -> dict[str, Any]:
        """The answer's body (schemas.Recommendations): path (default: the strategy) says
        whether the user is a cold start."""
        return {
            "user_id": user_id,
            "strategy": strategy,
            "family": self.family,
            "cold_start": (path or strategy) in (BLEND, POPULAR),
            "strategy_description": description or self._descriptions[strategy],
            "fold_in": fold_in,
            "fresh_events": fresh_events,
            "items": items,
        }

    def _bought(
        self, code: int, items: np.ndarray, types: np.ndarray, times: np.ndarray
    ) -> csr_matrix:
        """(1 x score columns) last purchase times: the training ones and the fresh
        purchases, the later of the two per item."""
        trained = self.model.purchase_times([code])
        chosen = (types == PURCHASE) & (items != UNKNOWN)
        columns = self._rec_column(items[chosen])
        keep = columns >= 0
        fresh = csr_matrix(
            (times[chosen][keep], (np.zeros(int(keep.sum()), dtype=np.int64), columns[keep])),
            shape=trained.shape,
        )
        return csr_matrix(trained.maximum(fresh))

    def _rec_column(self, item_codes: np.ndarray) -> np.ndarray:
        """The score column of each item code (-1: not recommendable)."""
        position = np.searchsorted(self._rec_codes, item_codes)
        inside = position < len(self._rec_codes)
        found = np.zeros(len(item_codes), dtype=bool)
        found[inside] = self._rec_codes[position[inside]] == item_codes[inside]
        return np.where(found, position, -1)

    def similar_with_rules(self, item_id: str, k: int, rules: Rules) -> list[dict[str, Any]]:
        """similar under rules: the family's similarity as the score, the rest as
        recommend_with_rules (items the similarity leaves out can come as fallbacks);
        KeyError if the item is unknown."""
        similarity = self.model.similarity_row(item_id)
        listable = np.ones((1, self.table.n), dtype=bool)
        own = self.table.column.get(item_id)
        if own is not None:
            listable[0, own] = False
        ranked = engine.rank(
            similarity[None, :].astype(np.float32), self.table, rules, k,
            listable=listable,
        )[0]  # fmt: skip
        return self._listed(ranked)

    def _listed(self, ranked: Ranked) -> list[dict[str, Any]]:
        """A rules engine list as the API's items: rank, score, reason and the metadata."""
        codes = self._rec_codes[ranked.columns].tolist()
        return [
            {"rank": position, "score": score, "reason": reason, **self._meta[code]}
            for position, (code, score, reason) in enumerate(
                zip(codes, ranked.scores.tolist(), ranked.reasons, strict=True), start=1
            )
        ]

    def _explain(self, user_id: str, item_id: str, strategy: str) -> dict[str, Any]:
        if strategy == POPULAR:
            return {"because": [], "similar_liked_items": []}
        why = self.model.explain(user_id, item_id, n=EXPLAIN_DRIVERS)
        because = [
            {**self.item(c["item_id"]), "contribution": float(c["contribution"])}
            for c in why["contributions"]
        ]
        out = {"because": because, "similar_liked_items": why["similar_liked_items"]}
        if "repeat" in why:  # repeat_weight > 0: the user's own repeat score of the item
            out["repeat"] = why["repeat"]
        return out

    def similar(self, item_id: str, k: int) -> list[dict[str, Any]]:
        """The k items closest to item_id (the family's item similarity, similarity_text);
        KeyError if unknown."""
        pairs = self.model.similar_items(item_id, k)
        return [
            {"rank": rank, "score": score, "reason": MODEL, **self.item(item)}
            for rank, (item, score) in enumerate(pairs, start=1)
        ]


def _pairs(codes: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """(item code, score) pairs up to the first padding slot."""
    out = []
    for code, score in zip(codes.tolist(), scores.tolist(), strict=True):
        if code == PAD_ITEM:
            break
        out.append((code, score))
    return out


def _metadata(
    model: Recommender, item_names: list[str], items: pd.DataFrame | None
) -> dict[int, dict[str, Any]]:
    """item code -> {item_id (the shop's), title, category, price}; items (the catalog, keyed
    by shop item ids; integer ids count as their decimal text) gives title, category and price,
    the model's category where the catalog has none, None for what nobody knows (JSON null)."""
    frame = pd.DataFrame({ITEM: pd.Series(item_names, dtype=object)})
    if items is not None and len(items):
        catalog = items[[c for c in (ITEM, TITLE, CATEGORY, PRICE) if c in items]]
        catalog = catalog.assign(**{ITEM: catalog[ITEM].astype(str).astype(object)})
        frame = frame.merge(catalog.drop_duplicates(ITEM), on=ITEM, how="left")
    columns = {
        column: frame[column].astype(object).tolist() if column in frame else [None] * len(frame)
        for column in (TITLE, CATEGORY, PRICE)
    }
    return {
        code: {
            "item_id": name,
            "title": _clean(title),
            "category": _clean(category) or model_category,
            "price": _clean(price),
        }
        for code, name, title, category, price, model_category in zip(
            model.item_ids.tolist(), item_names, columns[TITLE], columns[CATEGORY],
            columns[PRICE], model.item_categories.tolist(), strict=True,
        )
    }  # fmt: skip


def _clean(value: Any) -> Any:
    """None for missing values (NaN, NA), plain Python types otherwise."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return str(value) if not isinstance(value, int | float) else value
