"""The recommender: one model family (models_ml.families: implicit's ALS by default, BPR, EASE,
item-kNN or the EASE + ALS hybrid) on the confidence matrix, with cold-start handling.

The seed's API: MatrixFactorizationRecommender(n_factors=50).fit(train),
recommend_items(user_id, n_recommendations, exclude_known=True), similar_items(item_id, n),
explain(user_id, item_id); saving and loading: models_ml.package (save / load_recommender), which
owns the files. Defaults: those of recomart_core.settings [train] (from_settings builds the
recommender from a loaded configuration).

Two kinds of ids (models_ml.ids): the frames given to fit() and the batch methods
(recommend_batch, user_paths, user_ids, item_ids, user_items) use int64 codes; the methods a
person calls (recommend_items, recommend_ids, similar_items, explain, user_path, is_cold_item,
item_category) take and return the shop's ids, str. The vocabularies given to fit() (`users`,
`items`) translate between the two and are saved with the model; without them the codes are
their own names (str(code)).

Which path serves a user (see models_ml.coldstart for the formulas):
- known user with more than `few_interactions` items: the family's scores ("als" path, the name
  kept for every family: (x_u @ W)[j] + U[u] . V[j], models_ml.families);
- known user with at most `few_interactions` items: a blend of those scores and their categories;
- unknown user: recent popularity (time-decayed counts); scores are those decayed counts.
The popularity family (models_ml.families: the baseline served when nothing learned beats it)
has one path for every known user, "popularity": the items by their training interactions
(returns not counted), minus what the user may not get again, ties by the lower item code;
exactly models_ml.baselines.PopularityRecommender's list. Its recommendable items are those with
interactions (cold catalog items are not imputed), unknown users get the same plain counts (no
decay: one ranking for everybody), and with repeat_weight 1 a known user's repeatable items come
first (the blend below): the repeat baseline's list, up to ties of repeat scores (broken here by
popularity, there by item code). explain gives the item's count (no item of the user's drove
it) and similar_items the most popular other items (the family has no item similarity).
Scores are comparable within one user's list only. Items: the catalog given to fit() plus the
training items; catalog items without interactions get factors imputed from catalog similarity
(category, price band), and for the item-item families the rows and columns of W the same way.
Lists shorter than k are padded with item code -1 (shop id None) and
score -inf.

Repeat behaviour ([train] repeatable_events, repeat_half_life_days, repeat_weight; the rule in
models_ml.matrix): exclude_known leaves out the excluded pairs (an item the user had with an
event type that is not repeatable, or returned; with none repeatable, every item the user had).
With repeat_weight w > 0 a known user's list ranks by the blend

    blend(u, j) = (1 - w) * s(u, j) / |s_u| + w * r(u, j) / r_u

where s is the path's score (the family's on "als", the cold-start blend on "blend"), s_u the
user's best s among the items the list may hold (1 when it is 0), r(u, j) the repeat score of a
pair that is not excluded (models_ml.matrix.repeat_scores; 0 for other items) and r_u the
user's best repeat score (the term is 0 for a user without repeat items). Both parts are
scale-free: the same w means the same mix for every family. As the repeat term is >= 0 and the
first term increases with s, the blend's top k lies within s's top k plus the user's repeat
items: the factor families (ALS, BPR) rank only those candidates; the item-item families and
the blend path, which score every item anyway, blend in the dense chunk. The listed scores are
the blend's. w = 0: the family's scores as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix, issparse
from threadpoolctl import threadpool_limits

from models_ml import coldstart, families
from models_ml.arrays import unique_sorted
from models_ml.baselines import first_free_positions
from models_ml.families import Scorer
from models_ml.ids import Vocabulary
from models_ml.matrix import (
    DEFAULTS,
    RATING_MAX,
    UNKNOWN,
    IdMap,
    Weighting,
    confidence_matrix,
    default_event_weights,
    excluded_pairs,
    pair_keys,
    pair_matrix,
    repeat_scores,
)
from models_ml.ranking import (
    PAD_ITEM,
    PAD_SCORE,
    chunk_rows,
    for_chunks,
    top_k,
    top_k_dense,
    top_k_of,
)
from recomart_core.schema import CATEGORY, EVENT_TYPES, ITEM, PRICE, TIME, USER
from recomart_core.settings import Train

COLD = DEFAULTS.cold_start
DENSE_CHUNK = 4096  # users scored densely at a time on the blend path


@dataclass(frozen=True)
class RecommenderState:
    """Everything a fitted recommender holds, as plain objects: the family's Scorer, the training
    matrix, named arrays (ids, cold-start arrays, the vocabularies' arrays), the constructor
    params and the repeat policy's matrices (users x items: the excluded pairs, bool, and the
    repeat scores; None in a package saved before them: every stored cell of user_items is
    excluded, nothing repeats). models_ml.package writes it to files and reads it back."""

    scorer: Scorer
    user_items: csr_matrix
    arrays: dict[str, np.ndarray]
    params: dict[str, Any]
    excluded: csr_matrix | None = None
    repeats: csr_matrix | None = None


@dataclass(frozen=True)
class Prepared:
    """What scoring needs that depends on the model, not on the user: built once per fitted or
    loaded model (MatrixFactorizationRecommender._prepared), so a call costs O(its users x
    items x factors) and nothing O(all users). Nothing in it depends on repeat_weight, so the
    copies of with_repeat_weight share it."""

    rec: np.ndarray  # matrix columns of the recommendable items
    rec_codes: np.ndarray  # their item codes
    vectors: np.ndarray  # their factors, float32, column-major (items x factors; 0 columns)
    weights: np.ndarray | csr_matrix | None  # W's columns of the recommendable items
    column: np.ndarray  # matrix column -> position in rec (-1: not recommendable)
    relative: np.ndarray  # blend: w * within-category popularity of each rec item (float32)
    rec_categories: np.ndarray  # the category code of each rec item
    categories: csr_matrix  # items x categories one-hot (category shares of a user's items)


class MatrixFactorizationRecommender:
    """A model family (models_ml.families; `family`, default ALS) on the confidence matrix of
    models_ml.matrix (weighting, BM25, recency), plus cold start (models_ml.coldstart). alpha is
    applied when the matrix is built, so implicit's own alpha stays 1.0. Every default is the
    [train] default of recomart_core.settings (event_weights=None: [train.event_weights]);
    from_settings uses a loaded [train] section. The class keeps the seed API's name for every
    family (Recommender is the same class).
    """

    def __init__(
        self,
        n_factors: int = DEFAULTS.factors,
        iterations: int = DEFAULTS.iterations,
        regularization: float = DEFAULTS.regularization,
        alpha: float = DEFAULTS.alpha,
        event_weights: Mapping[str, float] | None = None,
        seed: int = DEFAULTS.seed,
        weighting: str = DEFAULTS.weighting,
        recency_half_life_days: float = DEFAULTS.recency_half_life_days,
        bm25_k1: float = DEFAULTS.bm25_k1,
        bm25_b: float = DEFAULTS.bm25_b,
        recent_half_life_days: float = COLD.recent_half_life_days,
        few_interactions: int = COLD.few_interactions,
        category_weight: float = COLD.category_weight,
        cold_items: bool = COLD.cold_items,
        price_bands: int = COLD.price_bands,
        cold_item_shrink: float = COLD.cold_item_shrink,
        rating_max: float = RATING_MAX,
        weight_by: str = DEFAULTS.weight_by,
        family: str = DEFAULTS.family,
        ease_l2: float = DEFAULTS.ease_l2,
        ease_dropout: float = DEFAULTS.ease_dropout,
        ease_zero_diagonal: bool = DEFAULTS.ease_zero_diagonal,
        ease_max_items: int = DEFAULTS.ease_max_items,
        bpr_factors: int = DEFAULTS.bpr_factors,
        bpr_learning_rate: float = DEFAULTS.bpr_learning_rate,
        bpr_regularization: float = DEFAULTS.bpr_regularization,
        bpr_iterations: int = DEFAULTS.bpr_iterations,
        knn_similarity: str = DEFAULTS.knn_similarity,
        knn_neighbours: int = DEFAULTS.knn_neighbours,
        hybrid_weight: float = DEFAULTS.hybrid_weight,
        repeatable_events: Sequence[str] = tuple(DEFAULTS.repeatable_events),
        repeat_half_life_days: float = DEFAULTS.repeat_half_life_days,
        repeat_weight: float = DEFAULTS.repeat_weight,
    ) -> None:
        if family not in families.ALL_FAMILIES:
            raise ValueError(f"family must be one of {families.ALL_FAMILIES}, got {family!r}")
        wrong = [event for event in repeatable_events if event not in EVENT_TYPES]
        if wrong or repeat_half_life_days <= 0 or not 0 <= repeat_weight <= 1:
            raise ValueError(
                f"repeatable_events must be among {EVENT_TYPES} (got {wrong}),"
                f" repeat_half_life_days positive (got {repeat_half_life_days}) and repeat_weight"
                f" in 0..1 (got {repeat_weight})"
            )
        self.repeatable_events = list(dict.fromkeys(repeatable_events))
        self.repeat_half_life_days = float(repeat_half_life_days)
        self.repeat_weight = float(repeat_weight)
        self.family = family
        self.ease_l2 = ease_l2
        self.ease_dropout = ease_dropout
        self.ease_zero_diagonal = ease_zero_diagonal
        self.ease_max_items = ease_max_items
        self.bpr_factors = bpr_factors
        self.bpr_learning_rate = bpr_learning_rate
        self.bpr_regularization = bpr_regularization
        self.bpr_iterations = bpr_iterations
        self.knn_similarity = knn_similarity
        self.knn_neighbours = knn_neighbours
        self.hybrid_weight = hybrid_weight
        self.n_factors = n_factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.event_weights = dict(event_weights or default_event_weights())
        self.seed = seed
        self.weighting = weighting
        self.recency_half_life_days = recency_half_life_days
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.recent_half_life_days = recent_half_life_days
        self.few_interactions = few_interactions
        self.category_weight = category_weight
        self.cold_items = cold_items
        self.price_bands = price_bands
        self.cold_item_shrink = cold_item_shrink
        self.rating_max = rating_max
        self.weight_by = weight_by
        self._weighting()  # validate early
        self._model: Scorer | None = None
        self._prep: Prepared | None = None
        self._neighbours: tuple[np.ndarray, np.ndarray] | None = None
        self._ranking: np.ndarray | None = None  # the popularity family's rec order

    @classmethod
    def from_settings(
        cls, train: Train, rating_max: float = RATING_MAX, **overrides: Any
    ) -> MatrixFactorizationRecommender:
        """The recommender a [train] section describes (cfg.settings.train), for the top of the
        rating scale ([ratings] max); overrides are constructor arguments."""
        params = {
            "n_factors": train.factors,
            "iterations": train.iterations,
            "regularization": train.regularization,
            "alpha": train.alpha,
            "event_weights": train.event_weights,
            "seed": train.seed,
            "weighting": train.weighting,
            "recency_half_life_days": train.recency_half_life_days,
            "bm25_k1": train.bm25_k1,
            "bm25_b": train.bm25_b,
            **train.cold_start.model_dump(),
            "rating_max": rating_max,
            "weight_by": train.weight_by,
            **{key: getattr(train, key) for key in families.PARAMS},
            "repeatable_events": train.repeatable_events,
            "repeat_half_life_days": train.repeat_half_life_days,
            "repeat_weight": train.repeat_weight,
        }
        return cls(**{**params, **overrides})

    def params(self) -> dict[str, Any]:
        """The constructor arguments, as saved next to the model."""
        return {
            "n_factors": self.n_factors,
            "iterations": self.iterations,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "event_weights": self.event_weights,
            "seed": self.seed,
            "weighting": self.weighting,
            "recency_half_life_days": self.recency_half_life_days,
            "bm25_k1": self.bm25_k1,
            "bm25_b": self.bm25_b,
            "recent_half_life_days": self.recent_half_life_days,
            "few_interactions": self.few_interactions,
            "category_weight": self.category_weight,
            "cold_items": self.cold_items,
            "price_bands": self.price_bands,
            "cold_item_shrink": self.cold_item_shrink,
            "rating_max": self.rating_max,
            "weight_by": self.weight_by,
            **{key: getattr(self, key) for key in families.PARAMS},
            "repeatable_events": list(self.repeatable_events),
            "repeat_half_life_days": self.repeat_half_life_days,
            "repeat_weight": self.repeat_weight,
        }

    def _weighting(self) -> Weighting:
        return Weighting(
            alpha=self.alpha,
            event_weights=self.event_weights,
            scheme=self.weighting,
            recency_half_life_days=self.recency_half_life_days,
            bm25_k1=self.bm25_k1,
            bm25_b=self.bm25_b,
            rating_max=self.rating_max,
            weight_by=self.weight_by,
        )

    # ---------------------------------------------------------------- fitting
    def fit(
        self,
        interactions: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        users: Vocabulary | None = None,
        items: Vocabulary | None = None,
    ) -> MatrixFactorizationRecommender:
        """Fit on interaction rows (user_id, item_id, rating, [event_type], [event_at]), ids as
        int64 codes.

        catalog: optional item_id, category, price rows (marts.item_features): its items become
        recommendable, those without interactions through catalog similarity. users, items: the
        vocabularies of the codes (models_ml.data.Marts.users/.items); omitted, a code c is the
        shop id str(c). Time decay counts back from each user's newest event_at (models_ml.matrix);
        recent popularity, for unknown users, from the newest event_at of all rows. The repeat
        policy's excluded pairs and repeat scores come from the same rows. BLAS runs on one
        thread. ValueError from a family that cannot fit this matrix (EASE above
        ease_max_items).
        """
        reference = interactions[TIME].max() if TIME in interactions else None
        weighting = self._weighting().as_dict()
        if TIME not in interactions:
            weighting["recency_half_life_days"] = 0.0
        if self.family in families.ITEM_ITEM:  # X'X and neighbours of the linear weights
            weighting["scheme"] = "linear"
        weighting = Weighting(**weighting)
        catalog_ids = None if catalog is None else catalog[ITEM].to_numpy(dtype=np.int64)
        user_items, self._users, self._items = confidence_matrix(
            interactions, weighting=weighting, item_ids=catalog_ids
        )
        self._user_vocab = _covering(users, self._users.ids, "user")
        self._item_vocab = _covering(items, self._items.ids, "item")
        self._user_items = user_items
        excluded = excluded_pairs(interactions, self.repeatable_events)
        self._excluded = pair_matrix(
            excluded[USER].to_numpy(), excluded[ITEM].to_numpy(), None, self._users, self._items
        )
        users_r, items_r, repeat = repeat_scores(
            interactions, self.repeatable_events, self.event_weights, self.repeat_half_life_days
        )
        self._repeats = pair_matrix(users_r, items_r, repeat, self._users, self._items)
        self._set_item_attributes(catalog)
        self._is_warm = np.diff(user_items.tocsc().indptr) > 0
        baseline = self.family in families.BASELINE_FAMILIES  # plain counts, one ranking
        if TIME in interactions and not baseline:
            pop_ids, pop_scores = coldstart.recent_popularity(
                interactions, self.recent_half_life_days, reference
            )
        else:
            pop_ids, pop_scores = coldstart.recent_popularity(interactions, 0.0)
        self._popular_ids, self._popular_scores = pop_ids, pop_scores.astype(np.float64)
        model = families.fit(
            self.family, user_items, self.alpha, self.params(), popularity=self._by_column()
        )
        if self.cold_items and not self._is_warm.all() and not baseline:
            groups = (self._is_warm, self._category_codes, self._bands, self.cold_item_shrink)
            if model.has_factors:
                model.item_factors = coldstart.impute_item_factors(model.item_factors, *groups)
            if model.item_weights is not None:
                model.item_weights = coldstart.impute_item_weights(model.item_weights, *groups)
        self._model = model
        self._prep, self._neighbours, self._ranking = None, None, None
        return self

    def _by_column(self) -> np.ndarray:
        """The popular scores (_popular_scores) per matrix column (0 for the others)."""
        popularity = np.zeros(len(self._items))
        rows = self._items.index(self._popular_ids)
        found = rows != UNKNOWN
        popularity[rows[found]] = self._popular_scores[found]
        return popularity

    def _set_item_attributes(self, catalog: pd.DataFrame | None) -> None:
        """Category codes and price bands aligned with the item index."""
        n = len(self._items)
        categories = np.full(n, coldstart.UNKNOWN_CATEGORY, dtype=object)
        prices = np.full(n, np.nan)
        if catalog is not None and len(catalog):
            rows = self._items.index(catalog[ITEM].to_numpy(dtype=np.int64))
            if CATEGORY in catalog:
                values = catalog[CATEGORY].astype(object).to_numpy()
                categories[rows] = np.where(pd.isna(values), coldstart.UNKNOWN_CATEGORY, values)
            if PRICE in catalog:
                prices[rows] = pd.to_numeric(catalog[PRICE], errors="coerce").to_numpy(float)
        names, codes = np.unique(categories.astype(str), return_inverse=True)
        self._category_names = names
        self._category_codes = codes.astype(np.int64)
        self._bands = coldstart.price_bands(prices, self.price_bands)

    # ------------------------------------------------------------ properties
    @property
    def users(self) -> Vocabulary:
        """The user vocabulary: shop user id <-> code."""
        return self._fitted()._user_vocab

    @property
    def items(self) -> Vocabulary:
        """The item vocabulary: shop item id <-> code."""
        return self._fitted()._item_vocab

    @property
    def user_ids(self) -> np.ndarray:
        """Codes of the users the model has factors for, sorted (int64)."""
        return self._fitted()._users.ids

    @property
    def item_ids(self) -> np.ndarray:
        """Codes of the items the model knows (training items and catalog), sorted (int64)."""
        return self._fitted()._items.ids

    @property
    def recommendable_item_ids(self) -> np.ndarray:
        """Codes the model may recommend: trained items, plus cold catalog items if enabled."""
        return self.item_ids[self._recommendable()]

    @property
    def item_categories(self) -> np.ndarray:
        """The category (str) of each item, aligned with item_ids."""
        return self._fitted()._category_names[self._category_codes].astype(str)

    @property
    def user_items(self) -> csr_matrix:
        """The training confidence matrix (users x items, index order of the codes user_ids and
        item_ids)."""
        return self._fitted()._user_items

    def is_cold_item(self, item_id: str) -> bool:
        """True for a catalog item (shop id) without training interactions; KeyError if
        unknown."""
        return not bool(self._is_warm[self._item_row(item_id)])

    def item_category(self, item_id: str) -> str:
        """The category of an item (shop id); KeyError if unknown."""
        row = self._item_row(item_id)
        return str(self._category_names[self._category_codes[row]])

    def user_path(self, user_id: str) -> str:
        """The path serving a shop user id: "als", "blend" (few interactions), "popularity"
        (the popularity family's known users) or "popular" (unknown user)."""
        return str(self.user_paths([self.users.code(user_id)])[0])

    def user_paths(self, user_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Per user code: "als", "blend" (few interactions) or "popular" (unknown user); with
        the popularity family every known user's is "popularity"."""
        rows = self._fitted()._users.index(_codes(user_ids))
        if self.family in families.BASELINE_FAMILIES:
            return np.where(rows == UNKNOWN, "popular", self.family)
        indptr, safe = self._user_items.indptr, np.maximum(rows, 0)
        few = (rows != UNKNOWN) & (indptr[safe + 1] - indptr[safe] <= self.few_interactions)
        return np.where(rows == UNKNOWN, "popular", np.where(few, "blend", "als"))

    # --------------------------------------------------------- recommending
    def recommend_batch(
        self, user_ids: Sequence[int] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item codes and scores, both (n_users, k), one row per user code given
        (UNKNOWN, -1, or any code without factors: the cold-start list).

        exclude_known leaves out what [train] repeatable_events excludes (models_ml.matrix
        excluded_pairs): by default every item the user had in the training data; with
        repeatable event types, the items the user had with another event type or returned.
        With repeat_weight > 0 known users' lists are the blend of the module docstring.
        """
        self._fitted()
        user_ids = _codes(user_ids)
        rows = self._users.index(user_ids)
        paths = self.user_paths(user_ids)
        item_ids = np.full((len(rows), k), PAD_ITEM, dtype=np.int64)
        scores = np.full((len(rows), k), PAD_SCORE, dtype=np.float32)
        prep = self._prepared()
        routes = (("als", self._top_model), ("blend", self._top_blend), *(
            (family, self._top_model) for family in families.BASELINE_FAMILIES
        ))  # fmt: skip
        for path, scorer in routes:
            chosen = np.flatnonzero(paths == path)
            if len(chosen):
                exclude = self._excluded_columns(rows[chosen], prep) if exclude_known else None
                idx, sc = scorer(rows[chosen], prep, k, exclude)
                item_ids[chosen] = np.where(idx == PAD_ITEM, PAD_ITEM, prep.rec_codes[idx])
                scores[chosen] = sc
        unknown = np.flatnonzero(paths == "popular")
        n_popular = min(k, len(self._popular_ids))
        item_ids[unknown, :n_popular] = self._popular_ids[:n_popular]
        scores[unknown, :n_popular] = self._popular_scores[:n_popular]
        return item_ids, scores

    def with_repeat_weight(self, weight: float) -> MatrixFactorizationRecommender:
        """A copy of this fitted recommender that differs only in repeat_weight: it shares the
        fitted arrays and the prepared scoring arrays (none depend on the weight), so building
        one costs nothing O(data); neither copy changes the other (nothing is modified in
        place, and fit() on either replaces its own attributes). ValueError outside 0..1."""
        if not 0 <= weight <= 1:
            raise ValueError(f"repeat_weight must be in 0..1, got {weight}")
        self._fitted()._prepared()  # built once, before the copy, so both use the same object
        twin = copy.copy(self)
        twin.repeat_weight = float(weight)
        return twin

    def prepare(self) -> None:
        """Build now what scoring and similar items prepare on first use (a server calls it at
        load, so no request pays for it)."""
        self._prepared()
        self._neighbour_vectors()
        if self.family in families.BASELINE_FAMILIES:
            self._popularity_ranking()

    def _neighbour_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """The recommendable items' float64 factors and their norms (similar_items)."""
        if self._neighbours is None:
            vectors = self._model.item_factors[self._prepared().rec].astype(np.float64)
            self._neighbours = (vectors, np.linalg.norm(vectors, axis=1))
        return self._neighbours

    def _scores(self, rows: np.ndarray, prep: Prepared) -> np.ndarray:
        """Dense float32 scores (len(rows) x recommendable items) of the family's formula."""
        model = self._model
        scores = np.zeros((len(rows), len(prep.rec)), dtype=np.float32)
        if prep.weights is not None:
            history = self._user_items[rows] @ prep.weights
            scores += history.toarray() if issparse(history) else history
        if model.has_factors:
            factors = model.user_factors[rows] @ prep.vectors.T
            if model.factor_scale != 1.0:
                factors *= np.float32(model.factor_scale)
            scores += factors
        return scores

    def _prepared(self) -> Prepared:
        if self._prep is None:
            rec = np.flatnonzero(self._recommendable())
            column = np.full(len(self._items), -1, dtype=np.int64)
            column[rec] = np.arange(len(rec))
            popularity = np.zeros(len(self._items))
            pop_rows = self._items.index(self._popular_ids)
            found = pop_rows != UNKNOWN
            popularity[pop_rows[found]] = self._popular_scores[found]
            rec_categories = self._category_codes[rec]
            relative = coldstart.within_category_popularity(popularity[rec], rec_categories)
            weights = self._model.item_weights
            if weights is not None:
                weights = csr_matrix(weights[:, rec]) if issparse(weights) else weights[:, rec]
            self._prep = Prepared(
                rec=rec,
                rec_codes=self._items.ids[rec],
                # column-major: vectors.T is contiguous, the fast layout of users @ vectors.T
                vectors=np.asfortranarray(self._model.item_factors[rec], dtype=np.float32),
                weights=weights,
                column=column,
                relative=(self.category_weight * relative).astype(np.float32),
                rec_categories=rec_categories,
                categories=coldstart.category_onehot(
                    self._category_codes, len(self._category_names)
                ),
            )
        return self._prep

    def _excluded_columns(self, rows: np.ndarray, prep: Prepared) -> csr_matrix:
        """(len(rows) x recommendable items): these users' excluded pairs (float32 ones)."""
        indptr, indices = self._excluded.indptr, self._excluded.indices
        starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
        offsets = np.cumsum(lengths) - lengths
        cells = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
        columns = prep.column[indices[cells]]
        keep = columns >= 0
        row_of = np.repeat(np.arange(len(rows)), lengths)[keep]
        return csr_matrix(
            (np.ones(int(keep.sum()), dtype=np.float32), (row_of, columns[keep])),
            shape=(len(rows), len(prep.rec)),
        )

    def _top_model(self, rows, prep, k, exclude):
        """Top k of the family's scores (the "als" path): from the factors alone (ALS, BPR)
        by ranking.top_k, else dense chunks of _scores; blended with the repeat scores when
        repeat_weight > 0 (_top_with_repeats)."""
        if self.repeat_weight > 0:
            return self._top_with_repeats(
                rows, prep, k, exclude, self._scores, chunk_rows(len(prep.rec))
            )
        if self.family in families.BASELINE_FAMILIES:
            return self._top_popularity(rows, prep, k, exclude)
        if prep.weights is None:
            return top_k(prep.vectors, self._model.user_factors[rows], k, exclude)
        return top_k_of(
            lambda part: self._scores(rows[part], prep), len(rows), len(prep.rec), k, exclude
        )

    def _popularity_ranking(self) -> np.ndarray:
        """The popularity family's recommendable items (positions in prep.rec) best first:
        by count, ties by the lower item index (= code), as top_k would order them."""
        if self._ranking is None:
            counts = self._prepared().vectors[:, 0]
            self._ranking = np.lexsort((np.arange(len(counts)), -counts))
        return self._ranking

    def _top_popularity(self, rows, prep, k, exclude):
        """Top k of the popularity family (repeat_weight 0) without scoring every item: the
        fixed ranking minus each user's excluded items (baselines.first_free_positions), so a
        user costs O(k + their excluded items), not O(items). The same lists and scores as
        top_k over U . V (counts are exact in float32)."""
        ranking = self._popularity_ranking()
        position = np.empty(len(ranking), dtype=np.int64)
        position[ranking] = np.arange(len(ranking))
        if exclude is None:
            exclude = csr_matrix((len(rows), len(ranking)), dtype=np.float32)
        taken = csr_matrix(
            (np.ones(exclude.nnz, dtype=bool), position[exclude.indices], exclude.indptr),
            shape=exclude.shape,
        )
        positions = first_free_positions(taken, k)
        padded = positions == PAD_ITEM
        idx = np.where(padded, PAD_ITEM, ranking[np.where(padded, 0, positions)])
        scores = np.where(padded, PAD_SCORE, prep.vectors[np.maximum(idx, 0), 0])
        return idx, scores.astype(np.float32)

    def _top_blend(self, rows, prep, k, exclude):
        """Top k of the few-interactions blend (_blend_scores), with the repeat scores when
        repeat_weight > 0."""
        step = min(DENSE_CHUNK, chunk_rows(len(prep.rec)))
        if self.repeat_weight > 0:
            return self._top_with_repeats(rows, prep, k, exclude, self._blend_scores, step)
        out_idx = np.full((len(rows), k), PAD_ITEM, dtype=np.int64)
        out_sc = np.full((len(rows), k), PAD_SCORE, dtype=np.float32)

        def work(part: slice) -> None:
            part_exclude = exclude[part] if exclude is not None else None
            out_idx[part], out_sc[part] = top_k_dense(
                self._blend_scores(rows[part], prep), k, part_exclude, copy=False
            )

        for_chunks(len(rows), step, work)
        return out_idx, out_sc

    def _blend_scores(self, rows: np.ndarray, prep: Prepared) -> np.ndarray:
        """Dense float32 scores of the few-interactions path: (1 - w) * the family's scores
        scaled to 0..1 per user + w * category share * recent popularity (w =
        category_weight)."""
        w = self.category_weight
        blended = self._scores(rows, prep)  # float32, in place: one chunk-sized temporary
        low, high = blended.min(axis=1, keepdims=True), blended.max(axis=1, keepdims=True)
        blended -= low
        blended *= ((1 - w) / np.where(high > low, high - low, 1.0)).astype(np.float32)
        affinity = coldstart.category_affinity(self._user_items[rows], prep.categories)
        blended += affinity.astype(np.float32)[:, prep.rec_categories] * prep.relative[None, :]
        return blended

    def _top_with_repeats(self, rows, prep, k, exclude, scores_of, step):
        """The top k of the repeat blend (module docstring) over path scores
        scores_of(rows, prep) (dense float32, len(rows) x recommendable items), in chunks of
        step users: the path's top k, then the blend of those and the user's repeat items only
        (_rank_candidates), never of every item."""
        out_idx = np.full((len(rows), k), PAD_ITEM, dtype=np.int64)
        out_sc = np.full((len(rows), k), PAD_SCORE, dtype=np.float32)
        terms = self._repeat_terms(rows, prep)

        def work(part: slice) -> None:
            scores = scores_of(rows[part], prep)
            part_exclude = exclude[part] if exclude is not None else None
            top, _ = top_k_dense(scores, k, part_exclude, copy=False)  # reads scores after
            out_idx[part], out_sc[part] = self._rank_candidates(top, scores, terms[part], k)

        for_chunks(len(rows), step, work)
        return out_idx, out_sc

    def _repeat_terms(self, rows: np.ndarray, prep: Prepared) -> csr_matrix:
        """(len(rows) x recommendable items) float64: r(u, j) / r_u, each repeat score over the
        user's best (the blend's second term before w)."""
        repeats = self._repeats[rows]
        columns = prep.column[repeats.indices]
        keep = columns >= 0
        owner = np.repeat(np.arange(len(rows)), np.diff(repeats.indptr))[keep]
        values = repeats.data[keep]
        best = np.zeros(len(rows))
        np.maximum.at(best, owner, values)
        return csr_matrix(
            (values / best[owner], (owner, columns[keep])), shape=(len(rows), len(prep.rec))
        )

    def _rank_candidates(
        self, top: np.ndarray, scores: np.ndarray, terms: csr_matrix, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per user, the k best of the candidates (the path's top k, `top`, and the repeat
        items, `terms`) by the blend (1 - w) * s / |s_u| + w * terms, ties by the path's score
        s (`scores`, the dense chunk), then by the lower item index: (len(top), k) columns and
        float32 blend scores, PAD_ITEM / PAD_SCORE padding. s_u, the best s of the user's
        candidates, is their best s overall (the top k holds it)."""
        w = self.repeat_weight
        n = len(top)
        listed = top.ravel() != PAD_ITEM
        term_owner = np.repeat(np.arange(n), np.diff(terms.indptr))
        term_keys = pair_keys(term_owner, terms.indices)
        keys = unique_sorted(
            np.concatenate(
                [pair_keys(np.repeat(np.arange(n), k)[listed], top.ravel()[listed]), term_keys]
            )
        )
        repeat = np.zeros(len(keys))
        repeat[np.searchsorted(keys, term_keys)] = terms.data
        owner, column = keys >> 32, keys & 0xFFFFFFFF
        learned = scores[owner, column].astype(np.float64)
        finite = np.isfinite(learned)  # an excluded item is never a candidate: a safeguard
        owner, column = owner[finite], column[finite]
        learned, repeat = learned[finite], repeat[finite]
        best = np.full(n, -np.inf)
        np.maximum.at(best, owner, learned)
        scale = np.where(np.isfinite(best) & (best != 0), np.abs(best), 1.0)
        blend = (1 - w) * learned / scale[owner] + w * repeat
        order = np.lexsort((column, -learned, -blend, owner))
        owner, column, blend = owner[order], column[order], blend[order]
        counts = np.bincount(owner, minlength=n)
        rank = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        keep = rank < k
        idx = np.full((n, k), PAD_ITEM, dtype=np.int64)
        out = np.full((n, k), PAD_SCORE, dtype=np.float32)
        idx[owner[keep], rank[keep]] = column[keep]
        out[owner[keep], rank[keep]] = blend[keep]
        return idx, out

    def recommend_ids(
        self, user_ids: Sequence[str] | np.ndarray, k: int, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """recommend_batch in shop ids: shop user ids in; (n_users, k) shop item ids (object
        array of str, None padding) and float32 scores out. Unknown users get the cold-start
        list."""
        item_codes, scores = self.recommend_batch(self.users.encode(user_ids), k, exclude_known)
        return self.items.decode(item_codes), scores

    def recommend_items(
        self, user_id: str, n_recommendations: int = 10, exclude_known: bool = True
    ) -> list[tuple[str, float]]:
        """One user's recommendations as (shop item id, score) pairs, best first, no padding."""
        codes, scores = self.recommend_batch(
            [self.users.code(user_id)], n_recommendations, exclude_known
        )
        kept = codes[0] != PAD_ITEM
        names = self.items.decode(codes[0][kept])
        return list(zip(names.tolist(), scores[0][kept].tolist(), strict=True))

    def similar_items(self, item_id: str, n: int = 10) -> list[tuple[str, float]]:
        """The n recommendable items (shop ids) closest to item_id, best first: the cosine of
        item factors (ALS, BPR), or the item's row of W for the item-item families (EASE,
        item-kNN, hybrid: what having this one item adds to each other item's score; items it
        adds nothing to are left out).

        Works for cold catalog items too (their imputed factors or W rows come from catalog
        similarity). The popularity family has no item similarity: the n most popular other
        items, scored by their counts. Raises KeyError for an item the model does not know.
        """
        row = self._item_row(item_id)
        prep = self._prepared()
        if self.family in families.BASELINE_FAMILIES:  # no similarity: the most popular
            cosine = prep.vectors[:, 0].astype(np.float64)
        elif prep.weights is not None:
            weights = prep.weights[row]
            cosine = (weights.toarray() if issparse(weights) else weights).ravel()
            cosine = np.where(cosine != 0, cosine, -np.inf).astype(np.float64)
        else:
            vectors, norms = self._neighbour_vectors()
            query = self._model.item_factors[row].astype(np.float64)
            qn = np.linalg.norm(query)
            if qn == 0:
                return []
            cosine = np.divide(
                vectors @ query, norms * qn, out=np.zeros(len(norms)), where=norms > 0
            )
        if prep.column[row] >= 0:
            cosine[prep.column[row]] = -np.inf
        if 0 < n < len(cosine):  # every item as good as the n-th best, ties included
            kth = np.partition(-cosine, n - 1)[n - 1]
            candidates = np.flatnonzero(-cosine <= kth)
        else:
            candidates = np.arange(len(cosine))
        order = candidates[np.lexsort((prep.rec_codes[candidates], -cosine[candidates]))][:n]
        order = order[np.isfinite(cosine[order])]
        names = self.items.decode(prep.rec_codes[order])
        return list(zip(names.tolist(), cosine[order].tolist(), strict=True))

    def explain(self, user_id: str, item_id: str, n: int = 5) -> dict[str, Any]:
        """Why item_id scores what it scores for user_id (both shop ids).

        Returns {user_id, item_id, path ("als" / "blend" / "popularity" / "popular"), score,
        is_cold_item, category, contributions: [{item_id, category, contribution}] (the user's
        n items that drove the score most: x_ui * W[i, j] for the item-item part, implicit's
        ALS explanation for the ALS part; score = the sum of all contributions; none for BPR,
        whose score does not split by item, nor for the popularity family, whose score is the
        item's count), similar_liked_items (for a cold item: the user's items with its
        category and price band, the catalog similarity it was recommended through)}; every
        id in it a shop id. With repeat_weight > 0 and a known user, also repeat: {weight,
        score (the pair's repeat score, 0 when the item is not one of the user's repeat items),
        scaled (score / the user's best repeat score), contribution (weight x scaled: the
        repeat part of the listed blend score)}. KeyError for an unknown item.
        """
        self._fitted()
        item_row = self._item_row(item_id)
        item_code = self._items.ids[item_row]
        user_code = [self.users.code(user_id)]
        path = str(self.user_paths(user_code)[0])
        out: dict[str, Any] = {
            "user_id": str(user_id),
            "item_id": str(item_id),
            "path": path,
            "is_cold_item": bool(not self._is_warm[item_row]),
            "category": self.item_category(item_id),
            "contributions": [],
            "similar_liked_items": [],
        }
        if path == "popular":
            where = np.flatnonzero(self._popular_ids == item_code)
            out["score"] = float(self._popular_scores[where[0]]) if len(where) else 0.0
            return out
        user_row = int(self._users.index(user_code)[0])
        total, by_item = self._contributions(user_row, item_row)
        out["score"] = total
        if self.repeat_weight > 0:
            repeats = self._repeats[user_row]
            score = float(repeats[0, item_row])
            best = float(repeats.data.max()) if repeats.nnz else 0.0
            scaled = score / best if best > 0 else 0.0
            out["repeat"] = {
                "weight": self.repeat_weight,
                "score": score,
                "scaled": scaled,
                "contribution": self.repeat_weight * scaled,
            }
        top = sorted(by_item.items(), key=lambda pair: (-pair[1], pair[0]))[:n]
        rows = np.array([row for row, _ in top], dtype=np.int64)
        names = self.items.decode(self._items.ids[rows])
        out["contributions"] = [
            {
                "item_id": name,
                "category": str(self._category_names[self._category_codes[row]]),
                "contribution": score,
            }
            for name, (row, score) in zip(names.tolist(), top, strict=True)
        ]
        if out["is_cold_item"]:
            liked = self._user_items[user_row].indices
            same = liked[
                (self._category_codes[liked] == self._category_codes[item_row])
                & (self._bands[liked] == self._bands[item_row])
            ]
            out["similar_liked_items"] = self.items.decode(self._items.ids[same]).tolist()
        return out

    def _contributions(self, user_row: int, item_row: int) -> tuple[float, dict[int, float]]:
        """The family's score of (user, item) and its split over the user's items (matrix
        columns): x_ui * W[i, j], plus the scaled ALS explanation; BPR's score does not split."""
        model = self._model
        liked = self._user_items[user_row]
        total, by_item = 0.0, {}
        if model.item_weights is not None:
            weights = model.item_weights
            column = (  # W[i, j] for the user's items i: one column, not their whole rows
                weights[:, [item_row]][liked.indices].toarray()
                if issparse(weights)
                else weights[liked.indices, item_row]
            )
            parts = liked.data.astype(np.float64) * np.asarray(column, dtype=np.float64).ravel()
            total += float(parts.sum())
            by_item = {int(i): float(c) for i, c in zip(liked.indices, parts, strict=True)}
        if not model.has_factors:
            return total, by_item
        if model.family in families.BASELINE_FAMILIES:  # the item's count, nobody's doing
            return float(model.item_factors[item_row, 0]), {}
        if model.family == "bpr":
            score = model.user_factors[user_row] @ model.item_factors[item_row]
            return total + model.factor_scale * float(score), by_item
        with threadpool_limits(1, "blas"):
            als_total, top, _ = model.als().explain(
                user_row, self._user_items, item_row, N=max(1, len(liked.indices))
            )
        for row, contribution in top:
            by_item[int(row)] = by_item.get(int(row), 0.0) + model.factor_scale * contribution
        return total + model.factor_scale * float(als_total), by_item

    # ------------------------------------------------------------ persistence
    def state(self) -> RecommenderState:
        """The fitted recommender as plain objects (models_ml.package saves them)."""
        self._fitted()
        arrays = {
            "user_ids": self._users.ids,
            "item_ids": self._items.ids,
            "popular_ids": self._popular_ids,
            "popular_scores": self._popular_scores,
            "category_names": self._category_names.astype(str),
            "category_codes": self._category_codes,
            "price_bands": self._bands,
            "is_warm": self._is_warm,
            **self._user_vocab.to_arrays("user_vocab"),
            **self._item_vocab.to_arrays("item_vocab"),
        }
        return RecommenderState(
            self._model, self._user_items, arrays, self.params(), self._excluded, self._repeats
        )

    @classmethod
    def from_state(cls, state: RecommenderState) -> MatrixFactorizationRecommender:
        """The recommender whose state() this was (models_ml.package reads it from files)."""
        recommender = cls(**state.params)
        arrays = state.arrays
        recommender._model = state.scorer
        recommender._user_items = csr_matrix(state.user_items)
        if state.excluded is None:  # saved before the repeat policy: what it excluded then
            excluded = recommender._user_items.astype(bool)
            excluded.data[:] = True
        else:
            excluded = csr_matrix(state.excluded, dtype=bool)
        recommender._excluded = excluded
        shape = recommender._user_items.shape
        recommender._repeats = csr_matrix(
            state.repeats if state.repeats is not None else shape, dtype=np.float64
        )
        recommender._users = IdMap(arrays["user_ids"])
        recommender._items = IdMap(arrays["item_ids"])
        recommender._popular_ids = arrays["popular_ids"]
        recommender._popular_scores = arrays["popular_scores"]
        recommender._category_names = arrays["category_names"]
        recommender._category_codes = arrays["category_codes"]
        recommender._bands = arrays["price_bands"]
        recommender._is_warm = arrays["is_warm"]
        recommender._user_vocab = Vocabulary.from_arrays(arrays, "user_vocab")
        recommender._item_vocab = Vocabulary.from_arrays(arrays, "item_vocab")
        return recommender

    # -------------------------------------------------------------- helpers
    def _recommendable(self) -> np.ndarray:
        """Items the model may list: trained items, plus cold catalog items if enabled; for
        the popularity family the items with interactions (what its baseline ranks)."""
        if self.family in families.BASELINE_FAMILIES:
            return self._model.item_factors[:, 0] > 0
        return self._is_warm | self.cold_items

    def _item_row(self, item_id: str) -> int:
        """Matrix column of a shop item id; KeyError if the model does not know it."""
        code = self._fitted()._item_vocab.code(item_id)
        row = int(self._items.index([code])[0])
        if row == UNKNOWN:
            raise KeyError(f"item {item_id!r} is unknown to the model")
        return row

    def _fitted(self) -> MatrixFactorizationRecommender:
        if self._model is None:
            raise RuntimeError("fit() or load() the recommender first")
        return self


def _codes(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """ids as an int64 array of codes; TypeError for anything else (shop ids are str: encode
    them with the vocabulary, or call the shop-id methods)."""
    codes = np.asarray(ids)
    if codes.size and codes.dtype.kind not in "iu":
        raise TypeError(f"expected int64 codes, got {codes.dtype} values: encode shop ids first")
    return codes.astype(np.int64, copy=False)


def _covering(vocabulary: Vocabulary | None, codes: np.ndarray, kind: str) -> Vocabulary:
    """vocabulary (identity over codes when None), checked to name every code."""
    if vocabulary is None:
        return Vocabulary.identity(codes)
    missing = vocabulary.positions(codes) < 0
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} {kind} codes of the rows are not in the {kind} vocabulary "
            f"(e.g. {codes[missing][:3].tolist()}): pass the vocabulary read with the rows"
        )
    return vocabulary


Recommender = MatrixFactorizationRecommender  # every family, by a name that says so
