"""The recommender: what every model family (models_ml.families) shares, written once.

A family is one class on this base (the way implicit shapes its models): it fits a Scorer
(factors U, V and/or item-item weights W) on the confidence matrix, and this base does the rest
for every family: the vocabularies, the known-item exclusion, top-k, the cold-start blend, the
repeat blend, similar items, explanations and the state the package saves.

    score(user u, item j) = (x_u @ W)[j] + factor_scale * U[u] . V[j]

The API: families.build(train).fit(interactions, catalog), recommend_items(user_id,
n_recommendations, exclude_known=True), recommend_ids, similar_items(item_id, n),
explain(user_id, item_id); saving and loading: models_ml.package (save / load_recommender),
which owns the files. Settings: a family's own (its pydantic `Settings`) and what all share
(ModelSettings: seed, the confidence weighting, cold start, the repeat policy), whose
defaults are those of recomart_core.settings [train].

Two kinds of ids (models_ml.ids): the frames given to fit() and the batch methods
(recommend_batch, user_paths, user_ids, item_ids, user_items) use int64 codes; the methods a
person calls (recommend_items, recommend_ids, similar_items, explain, user_path, is_cold_item,
item_category) take and return the shop's ids, str. The vocabularies given to fit() (`users`,
`items`) translate between the two and are saved with the model; without them the codes are
their own names (str(code)).

Which path serves a user (see models_ml.coldstart for the formulas):
- known user with more than `few_interactions` items: the family's scores ("model");
- known user with at most `few_interactions` items: a blend of those scores and their
  categories (families with `blend_path`; the popularity baseline has none);
- unknown user: recent popularity (time-decayed counts, or plain counts for a family whose
  _popularity_half_life() is 0); scores are those counts.
Scores are comparable within one user's list only. Items: the catalog given to fit() plus the
training items; catalog items without interactions get factors or rows and columns of W imputed
from catalog similarity (category, price band) where the family allows (_impute_cold).
Lists shorter than k are padded with item code -1 (shop id None) and score -inf.

Fresh events without retraining (score_history; the API's POST /events): a user's training row
plus the events' confidences (event_confidence: alpha * the event type's weight) is scored by the
family's _fold_in hook: FactorModel re-solves the user's factors by ALS's least-squares user
step with V fixed, (V'V + reg I + V'(C_u - I)V) x = V'C_u p_u (exact for ALS: its own
regularization and confidences), ItemItemModel takes x_u @ W of the row (exact), the hybrid
both, BPR the mean factors of the user's items (it has no closed-form user step), the
popularity baseline nothing (its scores do not depend on the user). An unknown user (a visitor)
is folded in from the events alone. excluded_events says which events make their item known.

Repeat behaviour ([train] repeatable_events, repeat_half_life_days, repeat_weight; the rule in
models_ml.matrix): exclude_known leaves out the excluded pairs (an item the user had with an
event type that is not repeatable, or returned; with none repeatable, every item the user had).
With repeat_weight w > 0 a known user's list ranks by the blend

    blend(u, j) = (1 - w) * s(u, j) / |s_u| + w * r(u, j) / r_u

where s is the path's score (the family's on "model", the cold-start blend on "blend"), s_u
the user's best s among the items the list may hold (1 when it is 0), r(u, j) the repeat score
of a pair that is not excluded (models_ml.matrix.repeat_scores; 0 for other items) and r_u the
user's best repeat score (the term is 0 for a user without repeat items). Both parts are
scale-free: the same w means the same mix for every family. The blend's top k lies within s's
top k plus the user's repeat items, so only those candidates are ranked by it. The listed
scores are the blend's. w = 0: the family's scores as they are.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel
from scipy.sparse import csr_matrix, issparse
from threadpoolctl import threadpool_limits

from models_ml import coldstart
from models_ml.arrays import unique_sorted
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
    last_purchases,
    pair_keys,
    pair_matrix,
    repeat_scores,
)
from models_ml.ranking import (
    PAD_ITEM,
    PAD_SCORE,
    chunk_rows,
    for_chunks,
    top_k_dense,
)
from recomart_core.schema import (
    CATEGORY,
    EVENT_TYPES,
    ITEM,
    PRICE,
    PURCHASE,
    RETURN_EVENT,
    TIME,
    USER,
)
from recomart_core.settings import ColdStart, Train

DENSE_CHUNK = 4096  # users scored densely at a time on the blend path
# the paths that serve a user (user_paths), what the API calls its strategy
MODEL, BLEND, POPULAR = "model", "blend", "popular"
# how score_history folded fresh events into a user's scores (the API's fold_in)
SOLVED, ROW, ROW_AND_SOLVED, MEAN_FACTORS = (
    "solved",
    "row",
    "row and solved",
    "mean of item factors",
)


@dataclass
class Scorer:
    """A fitted family as arrays: user_factors U (n_users x f, f may be 0), item_factors V
    (n_items x f), item_weights W (n_items x n_items, dense or CSR; None without one),
    factor_scale (the weight of U . V), regularization (of the least-squares solve that gave U
    and V, with which explain splits their score by the user's items; 0 where none did)."""

    family: str
    user_factors: np.ndarray
    item_factors: np.ndarray
    item_weights: np.ndarray | csr_matrix | None = None
    factor_scale: float = 1.0
    regularization: float = 0.0

    @property
    def has_factors(self) -> bool:
        return self.item_factors.shape[1] > 0

    def arrays(self) -> dict[str, Any]:
        """The arrays models_ml.package saves (W apart: dense or sparse)."""
        return {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "factor_scale": np.float64(self.factor_scale),
            "regularization": np.float64(self.regularization),
        }


@dataclass(frozen=True)
class RepeatPolicy:
    """[train] repeatable_events, repeat_half_life_days, repeat_weight (models_ml.matrix has the
    rule): the event types whose items may come back, the decay of a repeat score, and the
    weight of the repeat blend. ValueError for a value out of range."""

    events: tuple[str, ...] = tuple(DEFAULTS.repeatable_events)
    half_life_days: float = DEFAULTS.repeat_half_life_days
    weight: float = DEFAULTS.repeat_weight

    def __post_init__(self) -> None:
        events = tuple(dict.fromkeys(self.events))
        wrong = [event for event in events if event not in EVENT_TYPES]
        if wrong or self.half_life_days <= 0 or not 0 <= self.weight <= 1:
            raise ValueError(
                f"repeatable_events must be among {EVENT_TYPES} (got {wrong}),"
                f" repeat_half_life_days positive (got {self.half_life_days}) and repeat_weight"
                f" in 0..1 (got {self.weight})"
            )
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "half_life_days", float(self.half_life_days))
        object.__setattr__(self, "weight", float(self.weight))


@dataclass(frozen=True)
class ModelSettings:
    """What every family shares: the seed, the confidence weighting (models_ml.matrix: alpha,
    event weights, scheme, recency, BM25, rating_max, weight_by), cold start ([train.cold_start])
    and the repeat policy. Defaults: [train]'s (recomart_core.settings)."""

    seed: int = DEFAULTS.seed
    weighting: Weighting = field(default_factory=Weighting)
    cold_start: ColdStart = field(default_factory=ColdStart)
    repeat: RepeatPolicy = field(default_factory=RepeatPolicy)

    @classmethod
    def from_train(cls, train: Train, rating_max: float = RATING_MAX) -> ModelSettings:
        """The shared settings of a [train] section, for the top of the rating scale."""
        return cls(
            seed=train.seed,
            weighting=Weighting(
                alpha=train.alpha,
                event_weights=dict(train.event_weights),
                scheme=train.weighting,
                recency_half_life_days=train.recency_half_life_days,
                bm25_k1=train.bm25_k1,
                bm25_b=train.bm25_b,
                rating_max=rating_max,
                weight_by=train.weight_by,
            ),
            cold_start=train.cold_start.model_copy(),  # the model's own, not the config's
            repeat=RepeatPolicy(
                tuple(train.repeatable_events), train.repeat_half_life_days, train.repeat_weight
            ),
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelSettings:
        """From as_dict()'s keys (the flat params of packages 3-5 too); a missing key takes its
        default."""
        w = Weighting()
        cold = {k: values[k] for k in ColdStart.model_fields if k in values}
        return cls(
            seed=values.get("seed", DEFAULTS.seed),
            weighting=Weighting(
                alpha=values.get("alpha", w.alpha),
                event_weights=dict(values.get("event_weights") or default_event_weights()),
                scheme=values.get("weighting", w.scheme),
                recency_half_life_days=values.get(
                    "recency_half_life_days", w.recency_half_life_days
                ),
                bm25_k1=values.get("bm25_k1", w.bm25_k1),
                bm25_b=values.get("bm25_b", w.bm25_b),
                rating_max=values.get("rating_max", w.rating_max),
                weight_by=values.get("weight_by", w.weight_by),
            ),
            cold_start=ColdStart(**cold),
            repeat=RepeatPolicy(
                tuple(values.get("repeatable_events", ())),
                values.get("repeat_half_life_days", DEFAULTS.repeat_half_life_days),
                values.get("repeat_weight", 0.0),
            ),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values by their [train] names (weighting's scheme as `weighting`)."""
        w = self.weighting
        return {
            "alpha": w.alpha,
            "event_weights": dict(w.event_weights),
            "seed": self.seed,
            "weighting": w.scheme,
            "recency_half_life_days": w.recency_half_life_days,
            "bm25_k1": w.bm25_k1,
            "bm25_b": w.bm25_b,
            **self.cold_start.model_dump(),
            "rating_max": w.rating_max,
            "weight_by": w.weight_by,
            "repeatable_events": list(self.repeat.events),
            "repeat_half_life_days": self.repeat.half_life_days,
            "repeat_weight": self.repeat.weight,
        }


@dataclass(frozen=True)
class RecommenderState:
    """Everything a fitted recommender holds, as plain objects: the family's Scorer, the training
    matrix, named arrays (ids, cold-start arrays, the vocabularies' arrays), the params
    (Recommender.params) and the repeat policy's matrices (users x items: the excluded pairs,
    bool, and the repeat scores; None in a package saved before them: every stored cell of
    user_items is excluded, nothing repeats). models_ml.package writes it to files and reads it
    back."""

    scorer: Scorer
    user_items: csr_matrix
    arrays: dict[str, np.ndarray]
    params: dict[str, Any]
    excluded: csr_matrix | None = None
    repeats: csr_matrix | None = None
    purchases: csr_matrix | None = None  # last purchase per pair, seconds (None: unknown)


@dataclass(frozen=True)
class Prepared:
    """What scoring needs that depends on the model, not on the user: built once per fitted or
    loaded model (Recommender._prepared), so a call costs O(its users x items x factors) and
    nothing O(all users). Nothing in it depends on repeat_weight, so the copies of
    with_repeat_weight share it."""

    rec: np.ndarray  # matrix columns of the recommendable items
    rec_codes: np.ndarray  # their item codes
    vectors: np.ndarray  # their factors, float32, column-major (items x factors; 0 columns)
    weights: np.ndarray | csr_matrix | None  # W's columns of the recommendable items
    column: np.ndarray  # matrix column -> position in rec (-1: not recommendable)
    relative: np.ndarray  # blend: w * within-category popularity of each rec item (float32)
    rec_categories: np.ndarray  # the category code of each rec item
    categories: csr_matrix  # items x categories one-hot (category shares of a user's items)
    popularity: np.ndarray  # recent popularity of each rec item (float64; 0: none)


class Recommender(abc.ABC):
    """One model family on the confidence matrix of models_ml.matrix (weighting, BM25, recency),
    plus cold start (models_ml.coldstart). alpha is applied when the matrix is built. A family
    subclasses this (or a kind of models_ml.families.kinds), sets the class attributes below
    and implements the hooks: fit_scorer (required), and where its scores differ from the
    shared formula, _top, _similarity, _contributions, _recommendable and the others.

    Constructor: Family(settings: Family.Settings | None, common: ModelSettings | None), the
    family's own settings and the shared ones (defaults when None).
    """

    name: ClassVar[str]  # the [train] family value, and the package's
    title: ClassVar[str]  # what reports, the CLI and the API call it
    description: ClassVar[str]  # what the API says produced a "model" list
    similarity_text: ClassVar[str]  # what similar_items measures, in words
    Settings: ClassVar[type[BaseModel]]  # the family's own settings (pydantic, frozen)
    is_baseline: ClassVar[bool] = False  # served when nothing learned beats it; never searched
    dense: ClassVar[bool] = False  # holds a dense items x items matrix
    linear_matrix: ClassVar[bool] = False  # fitted on the linear confidence matrix
    blend_path: ClassVar[bool] = True  # users with few interactions get the cold-start blend
    # the family's settings by their flat names (params of packages 3-5) -> Settings field
    flat_keys: ClassVar[Mapping[str, str]] = {}
    # the model search (models_ml.tune, models_ml.selection): settings that grow with the number
    # of users (rescaled on a user sample), a setting whose values cost one fit together, and
    # the families whose best points the search starts this one from
    user_scaled: ClassVar[tuple[str, ...]] = ()
    free_setting: ClassVar[str | None] = None
    starts_from: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, settings: BaseModel | None = None, common: ModelSettings | None = None
    ) -> None:
        self.settings = settings if settings is not None else self.Settings()
        if not isinstance(self.settings, self.Settings):
            raise TypeError(
                f"{type(self).__name__} takes {type(self).__name__}.Settings, got"
                f" {type(self.settings).__name__}"
            )
        self.common = common if common is not None else ModelSettings()
        self._model: Scorer | None = None
        self._prep: Prepared | None = None
        self._neighbours: tuple[np.ndarray, np.ndarray] | None = None
        self._ranking: np.ndarray | None = None
        self._gram: np.ndarray | None = None  # V'V of the fold-in's solve, built on first use

    # ---------------------------------------------------------------- settings
    @property
    def family(self) -> str:
        """The family's name (the [train] family value)."""
        return self.name

    @property
    def repeat_weight(self) -> float:
        return self.common.repeat.weight

    @property
    def repeatable_events(self) -> list[str]:
        return list(self.common.repeat.events)

    @property
    def repeat_half_life_days(self) -> float:
        return self.common.repeat.half_life_days

    @property
    def cold_start(self) -> ColdStart:
        return self.common.cold_start

    def flat_settings(self) -> dict[str, Any]:
        """The family's settings by the flat names of packages 3-5 (flat_keys)."""
        return {flat: getattr(self.settings, key) for flat, key in self.flat_keys.items()}

    @classmethod
    def settings_from_flat(cls, values: Mapping[str, Any]) -> BaseModel:
        """The family's Settings from flat params (packages 3-5; a missing key: its default)."""
        return cls.Settings(
            **{key: values[flat] for flat, key in cls.flat_keys.items() if flat in values}
        )

    @classmethod
    def settings_from_train(cls, train: Train) -> BaseModel:
        """The family's Settings from [train.<family>] (ValidationError for a wrong value;
        models_ml.families.check turns it into a ConfigError naming the key)."""
        return cls.Settings(**train.family_table(cls.name))

    @classmethod
    def max_items(cls, settings: BaseModel) -> int | None:
        """The largest catalog the family fits (a dense family's bound), None: no bound."""
        return None

    def params(self) -> dict[str, Any]:
        """The settings, as saved next to the model (package format 6): {"family", "common"
        (ModelSettings.as_dict), "settings" (the family's own)}."""
        return {
            "family": self.name,
            "common": self.common.as_dict(),
            "settings": self.settings.model_dump(),
        }

    # ------------------------------------------------------------------ hooks
    @classmethod
    def cost_terms(cls, shape: Any, settings: BaseModel, shared: bool) -> tuple[float, ...]:
        """A priori seconds of the fit and its scoring beyond the matrix's setup, as terms
        added in order (models_ml.families.fit_seconds; the shape is a families.cost.Shape,
        settings the family's); none here."""
        return ()

    @abc.abstractmethod
    def fit_scorer(self, user_items: csr_matrix, popularity: np.ndarray) -> Scorer:
        """The family's Scorer fitted on the confidence matrix (users x items, with alpha);
        popularity: per matrix column, the items' popular scores (fit's). BLAS on one thread."""

    def _popularity_half_life(self) -> float:
        """The half-life in days of the popularity unknown users get (0: plain counts)."""
        return self.common.cold_start.recent_half_life_days

    def _impute_cold(self, model: Scorer) -> None:
        """Cold catalog items' factors and rows of W from their catalog groups (coldstart)."""
        groups = (
            self._is_warm,
            self._category_codes,
            self._bands,
            self.cold_start.cold_item_shrink,
        )
        if model.has_factors:
            model.item_factors = coldstart.impute_item_factors(model.item_factors, *groups)
        if model.item_weights is not None:
            model.item_weights = coldstart.impute_item_weights(model.item_weights, *groups)

    def _prepare_extra(self) -> None:
        """What the family builds at prepare() beyond the shared arrays (nothing here)."""
        return None

    @abc.abstractmethod
    def _top(self, rows: np.ndarray, prep: Prepared, k: int, exclude: csr_matrix | None):
        """Top k (positions in prep.rec, float32 scores) of the family's scores for these
        matrix rows, repeat_weight 0."""

    @abc.abstractmethod
    def _similarity(self, row: int, prep: Prepared) -> np.ndarray | None:
        """float64 similarity of item `row` to each recommendable item (-inf: left out);
        None: the item has no neighbours."""

    @abc.abstractmethod
    def _contributions(self, user_row: int, item_row: int) -> tuple[float, dict[int, float]]:
        """The family's score of (user, item) and its split over the user's items (matrix
        columns, {} when it does not split)."""

    def _fold_in(self, row: csr_matrix, prep: Prepared) -> tuple[np.ndarray, str] | None:
        """float32 scores over the recommendable items of one confidence row (1 x items, the
        training row plus fresh events) and how they were had (SOLVED, ROW, ...); None: the
        family cannot fold in (its path's scores serve). None here."""
        return None

    def _recommendable(self) -> np.ndarray:
        """Items the model may list: trained items, plus cold catalog items if enabled."""
        return self._is_warm | self.cold_start.cold_items

    def fit(
        self,
        interactions: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        users: Vocabulary | None = None,
        items: Vocabulary | None = None,
    ) -> Recommender:
        """Fit on interaction rows (user_id, item_id, rating, [event_type], [event_at]), ids as
        int64 codes.

        catalog: optional item_id, category, price rows (marts.item_features): its items become
        recommendable, those without interactions through catalog similarity. users, items: the
        vocabularies of the codes (models_ml.data.Marts.users/.items); omitted, a code c is the
        shop id str(c). Time decay counts back from each user's newest event_at (models_ml.matrix);
        recent popularity, for unknown users, from the newest event_at of all rows. The repeat
        policy's excluded pairs and repeat scores come from the same rows. BLAS runs on one
        thread. ValueError from a family that cannot fit this matrix (a dense family above
        its max_items).
        """
        reference = interactions[TIME].max() if TIME in interactions else None
        weighting = self.common.weighting.as_dict()
        if TIME not in interactions:
            weighting["recency_half_life_days"] = 0.0
        if self.linear_matrix:  # X'X and neighbours of the linear weights
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
            interactions,
            self.repeatable_events,
            self.common.weighting.event_weights,
            self.repeat_half_life_days,
        )
        self._repeats = pair_matrix(users_r, items_r, repeat, self._users, self._items)
        self._purchases = pair_matrix(*last_purchases(interactions), self._users, self._items)
        self._set_item_attributes(catalog)
        self._is_warm = np.diff(user_items.tocsc().indptr) > 0
        half_life = self._popularity_half_life()
        if TIME in interactions and half_life > 0:
            pop_ids, pop_scores = coldstart.recent_popularity(interactions, half_life, reference)
        else:
            pop_ids, pop_scores = coldstart.recent_popularity(interactions, 0.0)
        self._popular_ids, self._popular_scores = pop_ids, pop_scores.astype(np.float64)
        with threadpool_limits(1, "blas"):
            model = self.fit_scorer(user_items, self._by_column())
        if self.cold_start.cold_items and not self._is_warm.all():
            self._impute_cold(model)
        self._model = model
        self._prep, self._neighbours, self._ranking = None, None, None
        self._gram = None
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
        self._bands = coldstart.price_bands(prices, self.cold_start.price_bands)

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
        """The path serving a shop user id (user_paths)."""
        return str(self.user_paths([self.users.code(user_id)])[0])

    def user_paths(self, user_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Per user code: "model" (the family's scores), "blend" (few interactions; families
        with blend_path) or "popular" (unknown user)."""
        rows = self._fitted()._users.index(_codes(user_ids))
        if not self.blend_path:
            return np.where(rows == UNKNOWN, POPULAR, MODEL)
        indptr, safe = self._user_items.indptr, np.maximum(rows, 0)
        few = (rows != UNKNOWN) & (
            indptr[safe + 1] - indptr[safe] <= self.cold_start.few_interactions
        )
        return np.where(rows == UNKNOWN, POPULAR, np.where(few, BLEND, MODEL))

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
        for path, scorer in ((MODEL, self._top_model), (BLEND, self._top_blend)):
            chosen = np.flatnonzero(paths == path)
            if len(chosen):
                exclude = self._excluded_columns(rows[chosen], prep) if exclude_known else None
                idx, sc = scorer(rows[chosen], prep, k, exclude)
                item_ids[chosen] = np.where(idx == PAD_ITEM, PAD_ITEM, prep.rec_codes[idx])
                scores[chosen] = sc
        unknown = np.flatnonzero(paths == POPULAR)
        n_popular = min(k, len(self._popular_ids))
        item_ids[unknown, :n_popular] = self._popular_ids[:n_popular]
        scores[unknown, :n_popular] = self._popular_scores[:n_popular]
        return item_ids, scores

    def score_rows(
        self, user_ids: Sequence[int] | np.ndarray, exclude_known: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every recommendable item's score for these user codes: (paths, float32 scores of
        shape (n_users, len(rec_item_codes)), -inf where an item may not be listed). The
        scores whose top k recommend_batch lists, over all items, so that rules
        (models_ml.rules) can filter, boost and re-rank them: the family's scores (model path),
        the few-interactions blend (blend path), recent popularity (unknown users; 0 for items
        without any), each blended with the repeat scores when repeat_weight > 0 (the
        blend of _rank_candidates over every item: an item outside the path's top k has no
        repeat term, so the top k is the same). exclude_known as in recommend_batch."""
        self._fitted()
        user_ids = _codes(user_ids)
        rows = self._users.index(user_ids)
        paths = self.user_paths(user_ids)
        prep = self._prepared()
        out = np.empty((len(rows), len(prep.rec)), dtype=np.float32)
        for path, scores_of in ((MODEL, self._scores), (BLEND, self._blend_scores)):
            chosen = np.flatnonzero(paths == path)
            if not len(chosen):
                continue
            scores = scores_of(rows[chosen], prep)
            if exclude_known:
                excluded = self._excluded_columns(rows[chosen], prep).tocoo()
                scores[excluded.row, excluded.col] = -np.inf
            if self.repeat_weight > 0:
                scores = self._dense_repeat_blend(rows[chosen], prep, scores)
            out[chosen] = scores
        out[paths == POPULAR] = prep.popularity.astype(np.float32)
        return paths, out

    def _dense_repeat_blend(
        self, rows: np.ndarray, prep: Prepared, scores: np.ndarray
    ) -> np.ndarray:
        """(1 - w) * s / |s_u| + w * repeat terms over every item (s_u: the best finite s of
        the row), -inf kept: _rank_candidates' blend, dense."""
        w = self.repeat_weight
        finite = np.where(np.isfinite(scores), scores, -np.inf)
        best = finite.max(axis=1, initial=-np.inf)
        scale = np.where(np.isfinite(best) & (best != 0), np.abs(best), 1.0)
        blend = ((1 - w) / scale)[:, None] * scores.astype(np.float64)
        blend += w * self._repeat_terms(rows, prep).toarray()
        blend[~np.isfinite(scores)] = -np.inf
        return blend.astype(np.float32)

    @property
    def rec_item_codes(self) -> np.ndarray:
        """The item codes of score_rows' columns (the recommendable items)."""
        return self._prepared().rec_codes

    @property
    def rec_item_vectors(self) -> np.ndarray:
        """score_rows' columns' item factors (items x factors; 0 columns for a family without
        factors): what diversity by similarity compares."""
        return self._prepared().vectors

    @property
    def rec_popularity(self) -> np.ndarray:
        """Recent popularity of score_rows' columns (0: none): the rules' fallback order."""
        return self._prepared().popularity

    def excluded_columns(self, user_ids: Sequence[int] | np.ndarray) -> csr_matrix:
        """(n_users, len(rec_item_codes)) CSR: what exclude_known leaves out for each user
        (nothing for unknown users)."""
        rows = self._users.index(_codes(user_ids))
        prep = self._prepared()
        known = np.flatnonzero(rows != UNKNOWN)
        part = self._excluded_columns(rows[known], prep).tocoo()
        return csr_matrix(
            (part.data, (known[part.row], part.col)), shape=(len(rows), len(prep.rec))
        )

    def purchase_times(self, user_ids: Sequence[int] | np.ndarray) -> csr_matrix:
        """(n_users, len(rec_item_codes)) CSR: seconds since the epoch of each user's last
        purchase of each item (only bought pairs stored; nothing for unknown users or a
        package saved without purchases)."""
        rows = self._users.index(_codes(user_ids))
        prep = self._prepared()
        safe = np.where(rows == UNKNOWN, 0, rows)
        bought = self._purchases[safe].tocoo()
        columns = prep.column[bought.col]
        keep = (columns >= 0) & (rows[bought.row] != UNKNOWN)
        return csr_matrix(
            (bought.data[keep], (bought.row[keep], columns[keep])),
            shape=(len(rows), len(prep.rec)),
        )

    def event_confidence(self, event_types: Sequence[str] | np.ndarray) -> np.ndarray:
        """float64 confidence of fresh events (one per event type, e.g. "view"): alpha *
        event_weights[type], what a newest interaction row adds to its cell (rating, amount and
        recency at their neutral 1; a BM25-weighted model gets the linear value). 0 for a type
        without a weight."""
        weights = self.common.weighting.event_weights
        types, inverse = np.unique(np.asarray(event_types, dtype=str), return_inverse=True)
        per_type = np.array([float(weights.get(t, 0.0)) for t in types.tolist()])  # a few types
        return self.common.weighting.alpha * per_type[inverse.ravel()]

    def excluded_events(self, event_types: Sequence[str] | np.ndarray) -> np.ndarray:
        """bool per fresh event: its item is known for exclude_known, by the repeat policy's
        rule (models_ml.matrix.excluded_pairs: a type that is not repeatable, a return) and a
        purchase always (what the user just bought is not offered again at once)."""
        allowed = [e for e in self.repeatable_events if e not in (RETURN_EVENT, PURCHASE)]
        return ~np.isin(np.asarray(event_types, dtype=object), np.asarray(allowed, dtype=object))

    def history_row(
        self, user_id: int, item_ids: Sequence[int] | np.ndarray, weights: np.ndarray
    ) -> csr_matrix:
        """1 x items float32 CSR: the training row of user code user_id (none for an unknown
        user) plus weights summed into the cells of item codes item_ids (codes the model does
        not know are left out); cells that sum to 0 (bought and returned) are dropped."""
        self._fitted()
        row = self._users.index(_codes([user_id]))[0]
        if row != UNKNOWN:
            start, end = self._user_items.indptr[row], self._user_items.indptr[row + 1]
            base_columns = self._user_items.indices[start:end]
            base_values = self._user_items.data[start:end].astype(np.float64)
        else:
            base_columns, base_values = np.zeros(0, dtype=np.int64), np.zeros(0)
        columns = self._items.index(_codes(item_ids))
        known = columns != UNKNOWN
        cells, inverse = np.unique(
            np.concatenate([base_columns, columns[known]]), return_inverse=True
        )
        values = np.bincount(
            inverse.ravel(),
            weights=np.concatenate([base_values, np.asarray(weights, dtype=np.float64)[known]]),
            minlength=len(cells),
        )
        kept = values != 0  # bought and returned: as if unobserved
        return csr_matrix(
            (values[kept].astype(np.float32), cells[kept], [0, int(kept.sum())]),
            shape=(1, len(self._items)),
        )

    def score_history(
        self,
        user_id: int,
        item_ids: Sequence[int] | np.ndarray,
        weights: np.ndarray,
        exclude_ids: Sequence[int] | np.ndarray = (),
        exclude_known: bool = True,
    ) -> tuple[np.ndarray, str | None]:
        """One user's scores over score_rows' columns from their history plus fresh events,
        without retraining: (float32 scores, how), how one of SOLVED (factors re-solved by
        least squares from the row: ALS), ROW (x_u @ W of the row: EASE, item-kNN), ROW_AND_SOLVED
        (the hybrid), MEAN_FACTORS (the mean factors of the user's items: BPR cannot fold in),
        or None (a family without a fold-in, the popularity baseline: its path's scores).

        user_id: a user code (UNKNOWN or any code without factors: a visitor, from the events
        alone); item_ids, weights: the events' item codes and confidences (event_confidence).
        exclude_known leaves out the user's excluded training pairs and exclude_ids (the item
        codes of fresh events the repeat policy excludes, e.g. purchases), -inf. No repeat blend
        (repeat_weight) on folded-in scores."""
        prep = self._prepared()
        row = self.history_row(user_id, item_ids, weights)
        folded = self._fold_in(row, prep) if row.nnz else None
        if folded is None:
            _, scores = self.score_rows([user_id], exclude_known)
            scores, how = scores[0], None
        else:
            scores, how = folded
            scores = np.array(scores, dtype=np.float32).ravel()
            row = self._users.index(_codes([user_id]))[0]
            if exclude_known and row != UNKNOWN:  # the user's excluded training pairs
                excluded = self._excluded
                columns = prep.column[
                    excluded.indices[excluded.indptr[row] : excluded.indptr[row + 1]]
                ]
                scores[columns[columns >= 0]] = -np.inf
        if exclude_known and len(exclude_ids):
            columns = self._items.index(_codes(exclude_ids))
            columns = prep.column[columns[columns != UNKNOWN]]
            scores[columns[columns >= 0]] = -np.inf
        return scores, how

    def _factor_gram(self) -> np.ndarray:
        """V'V (float64) of the fold-in's least squares, built once (prepare builds it)."""
        if self._gram is None:
            vectors = self._model.item_factors.astype(np.float64)
            self._gram = vectors.T @ vectors
        return self._gram

    def _solved_factors(self, row: csr_matrix) -> np.ndarray:
        """The user factors least squares gives for one confidence row with the item factors V
        fixed, implicit's ALS user step solved exactly (its recalculate_user):
        (V'V + reg I + V' (C_u - I) V) x = V' C_u p_u, C_u the row's |confidences|, p_u 1 where
        a confidence is positive (a negative one, a return, weighs without preferring)."""
        model = self._model
        chosen = model.item_factors[row.indices].astype(np.float64)
        confidence = row.data.astype(np.float64)
        system = self._factor_gram() + model.regularization * np.eye(chosen.shape[1])
        system += chosen.T @ ((np.abs(confidence) - 1.0)[:, None] * chosen)
        rhs = chosen.T @ np.maximum(confidence, 0.0)
        return np.linalg.solve(system, rhs)

    def with_repeat_weight(self, weight: float) -> Recommender:
        """A copy of this fitted recommender that differs only in repeat_weight: it shares the
        fitted arrays and the prepared scoring arrays (none depend on the weight), so building
        one costs nothing O(data); neither copy changes the other (nothing is modified in
        place, and fit() on either replaces its own attributes). ValueError outside 0..1."""
        if not 0 <= weight <= 1:
            raise ValueError(f"repeat_weight must be in 0..1, got {weight}")
        self._fitted()._prepared()  # built once, before the copy, so both use the same object
        twin = copy.copy(self)
        repeat = dataclasses.replace(self.common.repeat, weight=float(weight))
        twin.common = dataclasses.replace(self.common, repeat=repeat)
        return twin

    def prepare(self) -> None:
        """Build now what scoring and similar items prepare on first use (a server calls it at
        load, so no request pays for it)."""
        self._prepared()
        self._prepare_extra()
        if self._model.has_factors:  # the fold-in's V'V (score_history)
            self._factor_gram()

    def _scores(self, rows: np.ndarray, prep: Prepared) -> np.ndarray:
        """Dense float32 scores (len(rows) x recommendable items): (x_u @ W)[j] + factor_scale *
        U[u] . V[j], the parts the family has."""
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
            if issparse(weights):
                weights = csr_matrix(weights[:, rec])
            elif weights is not None:
                if len(rec) < weights.shape[1]:
                    weights = weights[:, rec]  # Fortran order
                # C order: a sparse row times a Fortran-ordered W copies W first (EASE, 5,000
                # items: 130 ms a request instead of 0.02 ms); no copy when it is C already
                weights = np.ascontiguousarray(weights)
            self._prep = Prepared(
                rec=rec,
                rec_codes=self._items.ids[rec],
                # column-major: vectors.T is contiguous, the fast layout of users @ vectors.T
                vectors=np.asfortranarray(self._model.item_factors[rec], dtype=np.float32),
                weights=weights,
                column=column,
                relative=(self.cold_start.category_weight * relative).astype(np.float32),
                rec_categories=rec_categories,
                categories=coldstart.category_onehot(
                    self._category_codes, len(self._category_names)
                ),
                popularity=popularity[rec],
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
        """Top k of the family's scores (its path): the family's _top, or blended with the
        repeat scores when repeat_weight > 0 (_top_with_repeats)."""
        if self.repeat_weight > 0:
            return self._top_with_repeats(
                rows, prep, k, exclude, self._scores, chunk_rows(len(prep.rec))
            )
        return self._top(rows, prep, k, exclude)

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
        w = self.cold_start.category_weight
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

    def similarity_row(self, item_id: str) -> np.ndarray:
        """float64 similarity of item_id (shop id) to each of score_rows' columns, -inf for
        itself and for the items the family's similarity leaves out (all of them when the item
        has no neighbours); KeyError for an unknown item."""
        row = self._item_row(item_id)
        prep = self._prepared()
        cosine = self._similarity(row, prep)
        if cosine is None:
            return np.full(len(prep.rec), -np.inf)
        cosine = np.array(cosine, dtype=np.float64)
        if prep.column[row] >= 0:
            cosine[prep.column[row]] = -np.inf
        return cosine

    def similar_items(self, item_id: str, n: int = 10) -> list[tuple[str, float]]:
        """The n recommendable items (shop ids) closest to item_id, best first, by the family's
        item similarity (similarity_text says which; items it leaves out are not listed), ties
        by the lower item code.

        Works for cold catalog items too (their imputed factors or W rows come from catalog
        similarity). Raises KeyError for an item the model does not know.
        """
        row = self._item_row(item_id)
        prep = self._prepared()
        cosine = self._similarity(row, prep)
        if cosine is None:
            return []
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

        Returns {user_id, item_id, path (user_paths), score, is_cold_item, category,
        contributions: [{item_id, category, contribution}] (the user's n items that drove the
        score most, the family's split of its score, _contributions: score = the sum of all
        contributions; none when the family's score does not split by item),
        similar_liked_items (for a cold item: the user's items with its category and price
        band, the catalog similarity it was recommended through)}; every
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
        if path == POPULAR:
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

    def _weight_part(self, user_row: int, item_row: int) -> tuple[float, dict[int, float]]:
        """x_ui * W[i, j] over the user's items i: the score's W part and its split."""
        weights = self._model.item_weights
        liked = self._user_items[user_row]
        column = (  # W[i, j] for the user's items i: one column, not their whole rows
            weights[:, [item_row]][liked.indices].toarray()
            if issparse(weights)
            else weights[liked.indices, item_row]
        )
        parts = liked.data.astype(np.float64) * np.asarray(column, dtype=np.float64).ravel()
        by_item = {int(i): float(c) for i, c in zip(liked.indices, parts, strict=True)}
        return 0.0 + float(parts.sum()), by_item

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
            self._model, self._user_items, arrays, self.params(), self._excluded, self._repeats,
            self._purchases,
        )  # fmt: skip

    def restore(self, state: RecommenderState) -> Recommender:
        """This recommender with the fitted arrays of a state() (models_ml.families.load_state
        builds it from the state's params; models_ml.package reads the state from files)."""
        recommender = self
        arrays = state.arrays
        recommender._model = state.scorer
        recommender._gram = None
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
        recommender._purchases = csr_matrix(
            state.purchases if state.purchases is not None else shape, dtype=np.float64
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

    def _item_row(self, item_id: str) -> int:
        """Matrix column of a shop item id; KeyError if the model does not know it."""
        code = self._fitted()._item_vocab.code(item_id)
        row = int(self._items.index([code])[0])
        if row == UNKNOWN:
            raise KeyError(f"item {item_id!r} is unknown to the model")
        return row

    def _fitted(self) -> Recommender:
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
