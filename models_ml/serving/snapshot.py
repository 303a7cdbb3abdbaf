"""ServingModel: one loaded champion, everything the request path needs computed at load.

At load: the cold-start list (recent popularity, what an unknown user gets), each known user's
path (als / blend / popular) as one byte, and the item metadata (item_id as the shop's id,
title, category, price) as a dict per item code. Users are found through the model's user
vocabulary (a hash index built once), not a dict of their own. Up to precompute_max_users
users, every known user's top-max_k list (known items excluded and not) is computed at load and
a request is a lookup, a slice and a list of dicts: no DuckDB, no MLflow, no matrix product.
Lists of length k are the first k of the max_k list (the model ranks by score, ties by item
index, whatever k is).

Above precompute_max_users users, a list is scored per request by a Scorer: the model's own
formulas (models_ml.recommender recommend_batch, ALS and blend paths) with everything that does
not depend on the user prepared at load (the recommendable items' factors as one contiguous
float32 matrix, their codes, item -> column positions, the blend's per-item popularity terms).
A request costs one (1 x factors) @ (factors x items) product and an argpartition over the
items: O(n_items * factors), nothing O(n_users); the answers equal recommend_batch's.
Similar items (GET /items/{id}/similar) the same way (Neighbours): float64 factors and norms
of the recommendable items prepared at load, one product and a partial sort per request, the
answers of the model's similar_items.

A ServingModel is never changed after construction: the holder swaps whole objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models_ml import coldstart
from models_ml.ids import UNKNOWN
from models_ml.ranking import PAD_ITEM, top_k_dense
from models_ml.recommender import MatrixFactorizationRecommender, RecommenderState
from recomart.core.schema import CATEGORY, ITEM, PRICE, TITLE

POPULAR = "popular"
BLEND = "blend"
STRATEGY_TEXT = {
    "als": "collaborative filtering (ALS)",
    BLEND: "cold start, few interactions: ALS blended with the user's categories",
    POPULAR: "cold start, no history: recent popularity (time-decayed interaction counts)",
}
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


PATHS = ("als", BLEND, POPULAR)  # a user's path code is its position here
UNKNOWN_ROW = -1


class ServingModel:
    """A recommender plus its precomputed answers; read-only once built. Ids in and out of the
    public methods are the shop's (str)."""

    def __init__(
        self,
        model: MatrixFactorizationRecommender,
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
        state = model.state()  # the model's arrays (not copies), read once for both below
        self._neighbours = Neighbours(state)
        paths = model.user_paths(self._user_codes)
        self._paths = np.zeros(self.n_users, dtype=np.int8)
        for code, path in enumerate(PATHS):
            self._paths[paths == path] = code
        del paths
        pop_ids, pop_scores = model.recommend_batch([UNKNOWN], max_k)
        self._popular = _pairs(pop_ids[0], pop_scores[0])
        self._lists: dict[bool, tuple[np.ndarray, np.ndarray]] | None = None
        self._scorer: Scorer | None = None
        if self.n_users <= precompute_max_users:
            self._lists = {
                exclude: model.recommend_batch(self._user_codes, max_k, exclude_known=exclude)
                for exclude in (True, False)
            }
        else:
            self._scorer = Scorer(state)

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

    def item(self, item_id: str) -> dict[str, Any]:
        """{item_id, title, category, price} of a known item."""
        return dict(self._meta[self._item_codes[item_id]])

    # ----------------------------------------------------------- the answers
    def recommend(
        self, user_id: str, k: int, exclude_known: bool = True, explain: bool = False
    ) -> dict[str, Any]:
        """user_id's top k: {user_id, strategy, cold_start, strategy_description, items: [{rank,
        item_id, score, title, category, price[, because, similar_liked_items]}]}.
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
                ids, scores = self._scorer.top(row, strategy, k, exclude_known)
                pairs = _pairs(ids, scores)
        items = []
        for rank, (code, score) in enumerate(pairs, start=1):
            entry = {"rank": rank, "score": score, **self._meta[code]}
            if explain:
                entry.update(self._explain(user_id, entry["item_id"], strategy))
            items.append(entry)
        return {
            "user_id": user_id,
            "strategy": strategy,
            "cold_start": strategy != "als",
            "strategy_description": STRATEGY_TEXT[strategy],
            "items": items,
        }

    def _explain(self, user_id: str, item_id: str, strategy: str) -> dict[str, Any]:
        if strategy == POPULAR:
            return {"because": [], "similar_liked_items": []}
        why = self.model.explain(user_id, item_id, n=EXPLAIN_DRIVERS)
        because = [
            {**self.item(c["item_id"]), "contribution": float(c["contribution"])}
            for c in why["contributions"]
        ]
        return {"because": because, "similar_liked_items": why["similar_liked_items"]}

    def similar(self, item_id: str, k: int) -> list[dict[str, Any]]:
        """The k items closest to item_id (cosine of item factors); KeyError if unknown."""
        pairs = self._neighbours.similar(self._item_codes[item_id], k)
        return [
            {"rank": rank, "score": score, **self._meta[code]}
            for rank, (code, score) in enumerate(pairs, start=1)
        ]


class Neighbours:
    """The n items closest to an item, as MatrixFactorizationRecommender.similar_items computes
    them (cosine of float64 item factors over the recommendable items, the item itself left
    out, ties by item code), with the float64 factors and their norms computed once here
    instead of per call, and a partial sort instead of a full sort of every item."""

    def __init__(self, state: RecommenderState) -> None:
        is_warm = np.asarray(state.arrays["is_warm"], dtype=bool)
        rec = np.flatnonzero(is_warm | bool(state.params["cold_items"]))
        self._item_ids = np.asarray(state.arrays["item_ids"], dtype=np.int64)
        self._rec_codes = self._item_ids[rec]
        self._factors = state.als.item_factors
        self._vectors = state.als.item_factors[rec].astype(np.float64)
        self._norms = np.linalg.norm(self._vectors, axis=1)
        self._column = np.full(len(self._item_ids), -1, dtype=np.int64)
        self._column[rec] = np.arange(len(rec))

    def similar(self, code: int, n: int) -> list[tuple[int, float]]:
        """(item code, cosine) of the n items closest to the item of `code` (a known item's
        code), best first."""
        row = int(np.searchsorted(self._item_ids, code))
        query = self._factors[row].astype(np.float64)
        qn = np.linalg.norm(query)
        if qn == 0:
            return []
        cosine = np.divide(
            self._vectors @ query,
            self._norms * qn,
            out=np.zeros(len(self._vectors)),
            where=self._norms > 0,
        )
        if self._column[row] >= 0:
            cosine[self._column[row]] = -np.inf
        negative = -cosine
        if 0 < n < len(negative):  # every item as good as the n-th best, ties included
            kth = np.partition(negative, n - 1)[n - 1]
            candidates = np.flatnonzero(negative <= kth)
        else:
            candidates = np.arange(len(negative))
        order = candidates[np.lexsort((self._rec_codes[candidates], negative[candidates]))][:n]
        order = order[cosine[order] > -1.1]
        return list(zip(self._rec_codes[order].tolist(), cosine[order].tolist(), strict=True))


class Scorer:
    """One known user's top k at request time, as MatrixFactorizationRecommender.recommend_batch
    computes it for that user (same formulas, same float32 products, same ties), with every
    array that does not depend on the user built once here. Read-only after construction."""

    def __init__(self, state: RecommenderState) -> None:
        arrays, params = state.arrays, state.params
        is_warm = np.asarray(arrays["is_warm"], dtype=bool)
        rec = np.flatnonzero(is_warm | bool(params["cold_items"]))  # recommendable columns
        self._user_factors = state.als.user_factors
        item_factors = state.als.item_factors
        # what recommend_batch takes per call: factors[rec] (a contiguous copy) and its codes
        self._item_vectors = np.ascontiguousarray(item_factors[rec])
        item_ids = np.asarray(arrays["item_ids"], dtype=np.int64)
        self._rec_codes = item_ids[rec]
        self._column = np.full(len(item_ids), -1, dtype=np.int64)  # item row -> rec position
        self._column[rec] = np.arange(len(rec))
        matrix = state.user_items
        self._indptr, self._indices = matrix.indptr, matrix.indices
        # the blend path (MatrixFactorizationRecommender._top_blend), its per-item terms
        self._weight = float(params["category_weight"])
        category_codes = np.asarray(arrays["category_codes"], dtype=np.int64)
        self._category_codes = category_codes
        self._rec_categories = category_codes[rec]
        self._n_categories = len(arrays["category_names"])
        popular_ids = np.asarray(arrays["popular_ids"], dtype=np.int64)
        popularity = np.zeros(len(item_ids))
        pos = np.searchsorted(item_ids, popular_ids)
        found = pos < len(item_ids)
        found[found] = item_ids[pos[found]] == popular_ids[found]
        popularity[pos[found]] = np.asarray(arrays["popular_scores"])[found]
        self._relative = coldstart.within_category_popularity(
            popularity[rec], self._rec_categories
        )[None, :]

    def top(
        self, row: int, path: str, k: int, exclude_known: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(k item codes, k float32 scores) of the user at matrix row `row` on `path` ("als"
        or "blend"); PAD_ITEM / PAD_SCORE where fewer than k items are left."""
        known = self._indices[self._indptr[row] : self._indptr[row + 1]]
        scores = self._user_factors[row : row + 1] @ self._item_vectors.T  # (1, items) float32
        if path == BLEND:
            scores = self._blend(scores, known)
        if exclude_known and len(known):
            columns = self._column[known]
            scores[0, columns[columns >= 0]] = -np.inf
        idx, top = top_k_dense(scores, k)
        idx = idx[0]
        return np.where(idx == PAD_ITEM, PAD_ITEM, self._rec_codes[idx]), top[0]

    def _blend(self, als: np.ndarray, known: np.ndarray) -> np.ndarray:
        """(1 - w) * ALS scaled to 0..1 + w * category share * within-category popularity,
        in float32 (the arithmetic of MatrixFactorizationRecommender._top_blend)."""
        w = self._weight
        low, high = als.min(axis=1, keepdims=True), als.max(axis=1, keepdims=True)
        scaled = (als - low) / np.where(high > low, high - low, 1.0)
        counts = np.bincount(self._category_codes[known], minlength=self._n_categories).astype(
            np.float64
        )[None, :]
        totals = counts.sum(axis=1, keepdims=True)
        affinity = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        blended = (1 - w) * scaled + w * affinity[:, self._rec_categories] * self._relative
        return blended.astype(np.float32)


def _pairs(codes: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """(item code, score) pairs up to the first padding slot."""
    out = []
    for code, score in zip(codes.tolist(), scores.tolist(), strict=True):
        if code == PAD_ITEM:
            break
        out.append((code, score))
    return out


def _metadata(
    model: MatrixFactorizationRecommender, item_names: list[str], items: pd.DataFrame | None
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
