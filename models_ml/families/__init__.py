"""The model families and their registry. Each family is one class on the shared base
(models_ml.recommender.Recommender) in its own module; it turns the confidence matrix X (users x
items, models_ml.matrix) into one Scorer, so that every family scores, serves, saves and
explains the same way:

    score(user u, item j) = (x_u @ W)[j] + factor_scale * U[u] . V[j]

- als (the default and the scale model): implicit's ALS; U, V its factors, no W.
- bpr: implicit's Bayesian Personalized Ranking; U, V (V's last column is an item bias, U's a 1).
- ease: the closed-form item-item autoencoder on the Gram matrix G = X'X (Steck 2019, 2020), with
  L = l2 + dropout / (1 - dropout) * diag(G) and P = (G + diag(L))^-1:
    zero diagonal (EASE, with dropout: EDLAE): W = I - P diagMat(1 / diag(P)), diagonal 0;
    free diagonal (DLAE): W = (G + diag(L))^-1 G = I - P diagMat(L).
  W is dense: catalogs up to its `max_items` (memory grows with items squared).
  P comes from one Cholesky factorisation and its inverse (LAPACK potrf + potri, in G's own
  buffer), in float32 when Gershgorin's bound on the condition number of G + diag(L) is at most
  FLOAT32_MAX_CONDITION (1e5), else float64. `make bench-ease` measures it side by side in one
  run (reports/bench_ease.md: np.linalg.inv against the Cholesky inverse in float64 and float32,
  and the top 10 of float32 against float64): at 9,881 items inv 70 s, Cholesky 27 s (float64)
  and 13 s (float32), the same NDCG@10 and the same top 10 for every user. Past the bound,
  float32 starts to reorder near-ties (measured once: at a bound of 1.7e5, l2 0.2 on MovieLens,
  98.9 % of the lists stay the same).
  Both diagonal variants come from one P: inside shared_inverses() (the model search) the last
  P is kept, one at a time, and the other variant costs no factorisation. An eigendecomposition
  G = Q diag(e) Q' shared across l2 values was measured and is not used: at 4,000 items eigh
  took 12.4 s where one Cholesky inverse takes 1.5 s, and each l2 would still need the product
  Q diag(1 / (e + l2)) Q', 1.5 s as well: it never pays for a grid of a few l2 values.
- itemknn: implicit's item-item neighbours (cosine or BM25), the K best per item; W sparse.
- hybrid: EASE's W and ALS's U, V, each divided by the spread of its scores (up to
  SPREAD_USERS training users, over the items each can be recommended: their known items left
  out) and mixed as (1 - weight) * EASE + weight * ALS ([train.hybrid] weight).
- popularity: the popularity baseline as a model, what a refused model search serves
  (models_ml.tune): U = 1 for every user, V[j] = item j's training interactions, returns not
  counted (models_ml.coldstart.recent_popularity without decay: the counts
  models_ml.baselines.PopularityRecommender ranks by), so score(u, j) = popularity(j) for every
  user and a list is the popularity ranking minus what the user may not get again; with
  [train] repeat_weight 1 (models_ml.recommender) the user's own repeatable items come first:
  the repeat baseline. No W, no fitting: the recommender passes the counts (fit's popularity).
  Never a candidate of the model search (baselines()).

Adding a family: one module with its class (name, title, description, similarity_text,
Settings, fit_scorer and the hooks its scores need) and one line in FAMILY_CLASSES below;
registered() adds one for a block (tests, plugins).

fit_seconds is the a priori cost of a fit and its scoring (from the matrix's shape and the
family's settings, RATE measured on this project's 2-core machine) that the model search's time
budget starts from (models_ml.selection).

The item-item families (ease, itemknn, hybrid) are given the linear confidence matrix whatever
[train] weighting says (models_ml.recommender): their X is confidence / alpha, so l2 does not
depend on alpha; the hybrid's ALS part alone is BM25-weighted when weighting = "bm25".
Fitting is deterministic for a seed: BLAS on one thread, BPR on one thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from models_ml.families.als import ALS
from models_ml.families.bpr import BPR
from models_ml.families.cost import RATE, Shape, setup_seconds
from models_ml.families.ease import (
    EASE,
    FLOAT32_MAX_CONDITION,
    FLOAT64_BYTES,
    GRAM_BLOCK_CELLS,
    InverseCache,
    ease_dtype,
    ease_inverse,
    ease_penalty,
    ease_weights,
    gram,
    shared_inverses,
    spd_inverse,
)
from models_ml.families.hybrid import SPREAD_USERS, Hybrid, spread
from models_ml.families.itemknn import ItemKNN, knn_weights
from models_ml.families.kinds import FactorModel, ItemItemModel
from models_ml.families.popularity import Popularity, popularity_scorer
from models_ml.matrix import RATING_MAX
from models_ml.recommender import ModelSettings, Recommender, RecommenderState, Scorer
from recomart_core.settings import NESTED, ConfigError, Train

# adding a family: one line here
FAMILY_CLASSES: tuple[type[Recommender], ...] = (ALS, BPR, EASE, ItemKNN, Hybrid, Popularity)
REGISTRY: dict[str, type[Recommender]] = {cls.name: cls for cls in FAMILY_CLASSES}
READ_FLAT = (3, 4, 5)  # package formats whose params are flat (format 5's names)
FORMAT = 6  # params {"family", "common", "settings"} (models_ml.package.FORMAT_VERSION)


@contextmanager
def registered(cls: type[Recommender]) -> Iterator[type[Recommender]]:
    """The family `cls` in the registry while the block runs (tests, plugins). ValueError for a
    name already registered."""
    if cls.name in REGISTRY:
        raise ValueError(f"family {cls.name!r} is already registered")
    clash = [key for key in _own_fields(cls) if key in shared_keys()]
    if clash or cls.name in Train.model_fields:
        raise ValueError(
            f"family {cls.name!r}: its name or settings {clash} are shared [train] keys"
        )
    REGISTRY[cls.name] = cls
    try:
        yield cls
    finally:
        REGISTRY.pop(cls.name, None)


def names() -> tuple[str, ...]:
    """Every registered family: the learned ones and the baselines."""
    return tuple(REGISTRY)


def learned() -> tuple[str, ...]:
    """The learned families, what the model search and the benchmarks compare."""
    return tuple(name for name, cls in REGISTRY.items() if not cls.is_baseline)


def baselines() -> tuple[str, ...]:
    """The families served when nothing learned beats them; never searched."""
    return tuple(name for name, cls in REGISTRY.items() if cls.is_baseline)


def dense() -> tuple[str, ...]:
    """The families holding a dense items x items matrix (up to their max_items)."""
    return tuple(name for name, cls in REGISTRY.items() if cls.dense)


def titles() -> dict[str, str]:
    """What reports, the CLI and the API call each family."""
    return {name: cls.title for name, cls in REGISTRY.items()}


def family_class(name: str) -> type[Recommender]:
    """The class of a registered family; ValueError naming the registered ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"family must be one of {names()}, got {name!r}") from None


def check(train: Train) -> None:
    """Validate what of [train] the families own, before any work: the family is registered,
    each [train.<family>] table is valid for its family's Settings, and each
    [train.tune.space.<family>] names the family's own settings or shared [train] ones.
    ConfigError naming `[train.<family>] <key>`."""
    if train.family not in REGISTRY:
        raise ConfigError(
            f"[train] family: must be one of {', '.join(names())}, got {train.family!r}"
        )
    for table, values in train.families.items():
        cls = REGISTRY.get(table)
        if cls is None:
            raise ConfigError(
                f"[train.{table}]: not a model family nor a [train] table (families:"
                f" {', '.join(names())})"
            )
        own = _own_fields(cls)
        nested = [key for key in values if key in cls.Settings.model_fields and key not in own]
        if nested:
            raise ConfigError(
                f"[train.{table}] {nested[0]}: set it in its own table [train.{nested[0]}]"
            )
        try:
            cls.Settings(**values)
        except ValidationError as exc:
            raise ConfigError(_describe(table, exc.errors()[0])) from None
    shared = shared_keys()
    for family, space in train.tune.space.items():
        cls = REGISTRY.get(family)
        if cls is None:
            raise ConfigError(
                f"[train.tune.space.{family}]: not a model family ({', '.join(names())})"
            )
        unknown = [key for key in space if key not in _own_fields(cls) and key not in shared]
        if unknown:
            raise ConfigError(
                f"[train.tune.space.{family}] names {', '.join(unknown)}: not a [train.{family}]"
                f" setting ({', '.join(_own_fields(cls)) or 'none'}) nor a shared [train] one"
                f" (searchable: {', '.join(shared)})"
            )


def _own_fields(cls: type[Recommender]) -> tuple[str, ...]:
    """The family's own settings ([train.<family>] keys): its Settings fields that are not a
    part's nested settings."""
    return tuple(
        name
        for name, field in cls.Settings.model_fields.items()
        if not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel))
    )


def _describe(table: str, error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"[train.{table}] has no setting {key!r} (a typo?)"
    message = re.sub(r"^(Value|Assertion) error, ", "", error["msg"])
    return f"[train.{table}] {key}: {message}"


def shared_keys() -> tuple[str, ...]:
    """The [train] settings every family shares that the search may vary."""
    return tuple(key for key in Train.model_fields if key not in (*NESTED, "family"))


@dataclass(frozen=True)
class Spec:
    """The model a [train] section describes, resolved once: the family's class, its Settings
    ([train.<family>]), the shared ModelSettings, and every value a search point may name at
    [train]'s values (point_values: what a run logs as its params). new() builds one, unfitted;
    the settings are frozen, so the recommenders of one Spec share them."""

    cls: type[Recommender]
    settings: BaseModel
    common: ModelSettings
    points: dict[str, Any]

    def new(self) -> Recommender:
        return self.cls(self.settings, self.common)


def spec(train: Train, rating_max: float = RATING_MAX) -> Spec:
    """The Spec of a [train] section (cfg.settings.train: family, its table [train.<family>]
    and the shared keys), for the top of the rating scale ([ratings] max). ConfigError for a
    wrong family or value (check), before any work."""
    check(train)
    cls = REGISTRY[train.family]
    points = point_values(train)
    return Spec(
        cls, cls.settings_from_train(train), ModelSettings.from_train(train, rating_max), points
    )


def build(train: Train, rating_max: float = RATING_MAX) -> Recommender:
    """The (unfitted) recommender a [train] section describes: spec(train, rating_max).new()."""
    return spec(train, rating_max).new()


def from_flat(**flat: Any) -> Recommender:
    """The recommender of flat params (format 5 names: family, n_factors, ease_l2, seed,
    few_interactions, repeat_weight, ...; a missing one takes its default)."""
    cls = family_class(flat.get("family", "als"))
    return cls(cls.settings_from_flat(flat), ModelSettings.from_dict(flat))


def from_params(meta: Mapping[str, Any]) -> Recommender:
    """The (unfitted) recommender of a package's params.json: format 6 {"format_version",
    "family", "common", "settings"}, or formats 3-5 {"format_version", "params"} (flat, read
    through flat_keys). ValueError for another format or an unknown family."""
    found = meta.get("format_version")
    if found in READ_FLAT:
        return from_flat(**meta["params"])
    if found != FORMAT:
        raise ValueError(f"params of format {found}: this code reads {(*READ_FLAT, FORMAT)}")
    cls = family_class(meta["family"])
    return cls(
        cls.Settings.model_validate(meta["settings"]), ModelSettings.from_dict(meta["common"])
    )


def load_state(state: RecommenderState) -> Recommender:
    """The fitted recommender of a state() (models_ml.package reads it from files): its params
    are a format-6 {"family", "common", "settings"} or flat ones (formats 3-5)."""
    params = state.params
    meta = {"format_version": FORMAT, **params} if "settings" in params else {
        "format_version": READ_FLAT[-1], "params": params}  # fmt: skip
    return from_params(meta).restore(state)


# ------------------------------------------------------------------------- the model search
def qualified(family: str, key: str) -> str:
    """A search point's name of a setting of `family`'s space: "<family>.<key>" for the
    family's own ([train.<family>] key), the key itself for a shared [train] one."""
    return f"{family}.{key}" if key in _own_fields(family_class(family)) else key


def point_values(train: Train) -> dict[str, Any]:
    """Every setting a search point may name, at [train]'s values: the shared keys, and each
    family's own as "<family>.<key>" (defaults where [train.<family>] does not set them)."""
    values = {key: value for key, value in train.model_dump().items() if key not in NESTED}
    for name, cls in REGISTRY.items():
        settings = cls.Settings(**train.family_table(name)).model_dump()
        values.update({f"{name}.{key}": settings[key] for key in _own_fields(cls)})
    return values


def with_point(train: Train, point: Mapping[str, Any]) -> Train:
    """[train] with a search point's values: "<family>.<key>" into [train.<family>], the others
    into [train]; validated like the file's."""
    values = train.model_dump()
    tables = {name: dict(table) for name, table in values.pop("families").items()}
    for key, value in point.items():
        if "." in key:
            table, name = key.split(".", 1)
            tables.setdefault(table, {})[name] = value
        else:
            values[key] = value
    return Train.model_validate({**values, "families": tables})


def user_scaled() -> tuple[str, ...]:
    """The search points' settings that grow with the number of users (rescaled on a sample)."""
    return tuple(f"{n}.{key}" for n, cls in REGISTRY.items() for key in cls.user_scaled)


def free_settings() -> dict[str, str]:
    """{family: its point's setting whose values cost one fit together}."""
    return {n: f"{n}.{cls.free_setting}" for n, cls in REGISTRY.items() if cls.free_setting}


def starts_from(family: str) -> tuple[str, ...]:
    """The families whose best points the search starts `family` from."""
    return family_class(family).starts_from


def settings_of(train: Train, family: str) -> BaseModel:
    """The family's settings a [train] section gives."""
    return family_class(family).settings_from_train(train)


def max_items(train: Train, family: str) -> int | None:
    """The largest catalog `family` fits with [train]'s settings (None: no bound)."""
    cls = family_class(family)
    return cls.max_items(cls.settings_from_train(train))


def fit_seconds(family: str, shape: Shape, settings: BaseModel, shared: bool = False) -> float:
    """A priori seconds to fit `family` with its settings on a matrix of this shape and score
    its n_scored users (one core, families.cost.RATE): the matrix's setup plus the family's
    cost_terms (ALS ~ iterations x (nnz x factors + (users + items) x factors^2), BPR ~
    iterations x nnz x factors, EASE ~ items^3 (+ X'X), item-kNN ~ co-occurrences, the hybrid
    EASE + ALS, popularity nothing more). shared: EASE's inverse is already computed (the other
    diagonal variant, shared_inverses). The search scales it by its first measured fit."""
    total = setup_seconds(shape)
    for term in family_class(family).cost_terms(shape, settings, shared):
        total += term
    return total


def served_baseline(family: str, repeat_weight: float, repeatable: bool) -> str | None:
    """The baseline a baseline family serves, in words: "popularity", "repeat" (repeat_weight
    1 with repeatable event types: the user's own items first, then popularity) or popularity
    blended with repeats; None for a learned family."""
    if family not in baselines():
        return None
    if repeat_weight == 0 or not repeatable:
        return family
    if repeat_weight == 1:
        return "repeat"
    return f"{family} blended with repeats (repeat_weight {repeat_weight:g})"


__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "FAMILY_CLASSES",
    "FLOAT32_MAX_CONDITION",
    "FLOAT64_BYTES",
    "GRAM_BLOCK_CELLS",
    "RATE",
    "REGISTRY",
    "SPREAD_USERS",
    "FactorModel",
    "Hybrid",
    "InverseCache",
    "ItemItemModel",
    "ItemKNN",
    "ModelSettings",
    "Popularity",
    "Scorer",
    "Shape",
    "Spec",
    "baselines",
    "build",
    "check",
    "dense",
    "ease_dtype",
    "ease_inverse",
    "ease_penalty",
    "ease_weights",
    "family_class",
    "fit_seconds",
    "from_flat",
    "from_params",
    "gram",
    "knn_weights",
    "learned",
    "load_state",
    "names",
    "point_values",
    "popularity_scorer",
    "qualified",
    "registered",
    "served_baseline",
    "settings_of",
    "shared_inverses",
    "spd_inverse",
    "spec",
    "spread",
    "titles",
    "with_point",
]
