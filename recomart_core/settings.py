"""The settings of recomart.toml, validated once when the file is read.

Each section is a pydantic model with the one set of defaults. A wrong key or value fails at start
with a ConfigError naming the section, the key and what is allowed, never later as a dlt, dbt or
Soda error. Imports nothing of ours but the column names.
"""

from __future__ import annotations

import re
from copy import deepcopy
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recomart_core import schema as s

EPOCH_FORMATS = ("epoch_s", "epoch_ms")
AUTO = "auto"
RETURN_ACTIONS = ("drop", "quarantine", "negative")
MISSING_USER_RULES = ("defect", "guest")
CATALOG_SOURCES = ("api", "files", "none")
CATALOG_FORMATS = ("auto", "csv", "json", "parquet")
UNKNOWN_ITEM_POLICIES = ("reject", "keep")
WEIGHT_BY = ("events", "quantity", "value")
TRANSACTION_LINES = ("sum", "latest")
TIME_OFFSET_UNITS = ("s", "ms")
ENGINES = ("duckdb", "spark")  # where transform, gate and training run (README "Scaling out")
MAX_DELIMITER_BYTES = 4  # DuckDB's read_csv takes delimiters of 1 to 4 bytes
# The least parse_memory_limit: the ingest's parse of a file ran out of memory at 32MB (DuckDB's
# CSV buffers alone take 16 MiB) and parsed 400,000 rows of 5 or 10 columns at 40MB
MIN_PARSE_MEMORY_BYTES = 40 * 1000**2  # "40MB" as DuckDB reads it (MB: 1000**2, MiB: 1024**2)
_SIZE_UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
               "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}  # fmt: skip
# Upper bounds of the settings that size memory or work (each field below names its own): a
# value past them is a typo or an attack (`max_k = 1000000000` allocated 9.5 GB), never a real
# shop's need. Generous: each is far above what the project's benchmarks use.
MAX_K = 1_000  # [train] k, plot_max_k, [serve] max_k: a list longer than this is not a list
MAX_FACTORS = 1_024  # latent factors of ALS and BPR
MAX_ITERATIONS = 10_000  # ALS and BPR epochs
MAX_USERS = 10_000_000  # users sampled or scored (tune max_users, evaluation max_eval_users)
# [serve] precompute_max_users x max_k: the cells of the lists computed at load (two lists of
# ids and scores per user: about 24 bytes a cell, 2.4 GB at the bound)
MAX_PRECOMPUTED_CELLS = 100_000_000


class ConfigError(ValueError):
    """A setting of recomart.toml is wrong; the message names the key and what is allowed."""


class _Section(BaseModel):
    # a number written inf or nan in the TOML is refused ("Input should be a finite number")
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _choice(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _mapped_onto(mapping: dict[str, str], ours: tuple[str, ...], what: str) -> dict[str, str]:
    """A column_map whose every target is one of `ours`."""
    for name, target in mapping.items():
        if target not in ours:
            raise ValueError(f"{name!r} maps to {target!r}; {what} are {', '.join(ours)}")
    return mapping


class Returns(_Section):
    """[ingest.interactions.returns]: which rows are returns or cancellations, and what to do."""

    action: str = "drop"  # drop | quarantine | negative
    negative_quantity: bool = True  # quantity < 0 marks a return
    transaction_prefix: str = ""  # a transaction_id starting with this marks one ("" = off)

    _action = field_validator("action")(lambda v: _choice(v, RETURN_ACTIONS))


class InteractionsFormat(_Section):
    """[ingest.interactions]: how the shop's interaction files are laid out."""

    delimiter: str = ","  # one to four bytes: ",", "\t", ";", "::" (MovieLens 1M)
    header: bool = True
    columns: list[str] = Field(default_factory=list)  # the file's columns, for header-less files
    column_map: dict[str, str] = Field(default_factory=dict)  # the file's name -> ours
    # the file's columns left unread, even when named like one of ours (a session log's mostly
    # empty `user_id` when the session is the user: `session_id = "user_id"` in column_map)
    ignore_columns: list[str] = Field(default_factory=list)
    # a column mapped to `time_offset` is added to the timestamp, in this unit (Diginetica: a
    # date plus the milliseconds since the session began)
    time_offset_unit: str = "ms"
    # lines of one transaction (same transaction_id, user, item, event and time, in one delivery:
    # an invoice that lists a product on several lines): "sum" = one event, quantities and values
    # added; "latest" = the last line wins, the others are superseded
    transaction_lines: str = "sum"
    timestamp_format: str | list[str] = AUTO  # auto | epoch_s | epoch_ms | strptime format(s)
    timezone: str = "UTC"  # the zone of timestamps written without an offset
    event_map: dict[str, str] = Field(default_factory=dict)  # the file's event name -> ours
    default_event: str = s.DEFAULT_EVENT  # the event of a row that names none (or no column)
    returns: Returns = Field(default_factory=Returns)
    # a row without a user id: "defect" (quarantined as `missing user_id`, counted by the gate) or
    # "guest" (a guest checkout: quarantined as `guest (no user_id)`, kept for review, no defect)
    missing_user: str = "defect"
    # DuckDB's memory while parsing; beyond it, it spills to disk (a file of any size parses);
    # at least 40MB (MIN_PARSE_MEMORY_BYTES): far below it every file fails with Out of Memory
    parse_memory_limit: str = "2GB"
    encoding: Literal["utf-8", "latin-1"] = "utf-8"  # the files' text encoding

    _default_event = field_validator("default_event")(lambda v: _choice(v, s.EVENT_TYPES))
    _missing_user = field_validator("missing_user")(lambda v: _choice(v, MISSING_USER_RULES))
    _offset_unit = field_validator("time_offset_unit")(lambda v: _choice(v, TIME_OFFSET_UNITS))
    _transaction_lines = field_validator("transaction_lines")(
        lambda v: _choice(v, TRANSACTION_LINES)
    )

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        size = len(value.encode())
        if not 1 <= size <= MAX_DELIMITER_BYTES or "\n" in value or "\r" in value or '"' in value:
            raise ValueError(
                f"must be 1 to {MAX_DELIMITER_BYTES} bytes and hold no line break or quote"
                f' (a tab is "\\t", MovieLens 1M\'s is "::"), got {value!r}'
            )
        return value

    _column_map = field_validator("column_map")(
        lambda mapping: _mapped_onto(mapping, s.CSV_INPUT_COLUMNS, "our columns")
    )

    @field_validator("parse_memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        size = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", value)
        if not size:
            raise ValueError(f'a size such as "2GB" or "512MB", got {value!r}')
        if float(size[1]) * _SIZE_UNITS[size[2]] < MIN_PARSE_MEMORY_BYTES:
            raise ValueError(
                f"at least 40MB (below it DuckDB runs out of memory parsing a file), got {value!r}"
            )
        return value.strip()

    @field_validator("timestamp_format")
    @classmethod
    def _formats(cls, value: str | list[str]) -> str | list[str]:
        for fmt in [value] if isinstance(value, str) else value:
            if fmt not in (AUTO, *EPOCH_FORMATS) and "%" not in fmt:
                raise ValueError(
                    f"{fmt!r} is not auto, epoch_s, epoch_ms or a strptime format"
                    ' such as "%m/%d/%Y %H:%M"'
                )
        if isinstance(value, list) and not value:
            raise ValueError('give at least one format, or "auto"')
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone name such as UTC or Europe/London"
            ) from None
        return value

    @field_validator("event_map")
    @classmethod
    def _events(cls, mapping: dict[str, str]) -> dict[str, str]:
        for name, ours in mapping.items():
            if ours not in s.EVENT_TYPES:
                raise ValueError(
                    f"{name!r} maps to {ours!r}; our event types are {', '.join(s.EVENT_TYPES)}"
                    " (returns are found by [ingest.interactions.returns])"
                )
        return {name.strip().lower(): ours for name, ours in mapping.items()}

    @model_validator(mode="after")
    def _required_columns(self) -> InteractionsFormat:
        if not self.header:
            if not self.columns:
                raise ValueError("header = false needs columns = [...]: the file's columns")
            unknown = [c for c in self.ignore_columns if c not in self.columns]
            if unknown:
                raise ValueError(
                    f"ignore_columns names {', '.join(map(repr, unknown))}, not among columns"
                    f" {self.columns}"
                )
            if twice := self.mapped_twice(self.columns):
                raise ValueError(f"columns {self.columns}: {twice}")
            ours = self.our_names(self.columns)
            missing = [c for c in s.CSV_REQUIRED if c not in ours]
            if missing:
                raise ValueError(
                    f"columns {self.columns} (after column_map and ignore_columns) lack"
                    f" {', '.join(missing)}"
                )
        return self

    def our_names(self, names: list[str]) -> list[str | None]:
        """Our name for each of a file's column names, in order: column_map applied (a name it
        lacks stays as it is), None for a column of ignore_columns (never read into ours)."""
        ignored = set(self.ignore_columns)
        return [None if n in ignored else self.column_map.get(n, n) for n in names]

    def mapped_twice(self, names: list[str]) -> str | None:
        """What is wrong when two of a file's columns (named `names`, in order) map onto the same
        one of our input columns, neither ignored: both columns by position and name, and how to
        fix it; None when every one of ours has at most one column."""
        first: dict[str, int] = {}
        for position, ours in enumerate(self.our_names(names)):
            if ours not in s.CSV_INPUT_COLUMNS:
                continue
            if ours in first:
                before = first[ours]
                return (
                    f"column {before + 1} {names[before]!r} and column {position + 1}"
                    f" {names[position]!r} both map to {ours}; map one of them elsewhere in"
                    " column_map or list it in ignore_columns"
                )
            first[ours] = position
        return None

    @property
    def formats(self) -> list[str]:
        """The timestamp formats as a list."""
        return (
            [self.timestamp_format]
            if isinstance(self.timestamp_format, str)
            else list(self.timestamp_format)
        )


class Ingest(_Section):
    interactions: InteractionsFormat = Field(default_factory=InteractionsFormat)


class Ratings(_Section):
    """[ratings]: the shop's rating scale. Rows without a rating are implicit feedback."""

    min: float = float(s.RATING_MIN)
    max: float = float(s.RATING_MAX)
    step: float = 0.0  # 0: any value between min and max; 0.5: half stars; 1: whole stars

    @model_validator(mode="after")
    def _scale(self) -> Ratings:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.step < 0:
            raise ValueError(f"step must be 0 (any value) or positive, got {self.step}")
        if self.step and abs(round((self.max - self.min) / self.step) * self.step
                             - (self.max - self.min)) > 1e-9:  # fmt: skip
            raise ValueError(f"step {self.step} does not divide max - min = {self.max - self.min}")
        return self


class Catalog(_Section):
    """[catalog]: where the product catalog comes from, and what to do with unknown items."""

    source: str = "api"  # api (.dlt/config.toml [sources.catalog]) | files | none
    files: str = ""  # a glob of catalog files, relative to the home (source = files)
    format: str = AUTO  # auto (by extension) | csv | json | parquet
    delimiter: str = ","  # csv files
    column_map: dict[str, str] = Field(default_factory=dict)  # the file's name -> ours
    category_separator: str = ""  # e.g. "|": the category is the first of the listed ones
    unknown_items: str | None = None  # reject | keep; default reject, keep when source = none
    # item ids of the interaction log that are not products (postage, fees, discounts): their
    # rows are rejected by dbt as `not a product`, so they are never learnt or recommended
    not_products: list[str] = Field(default_factory=list)

    _source = field_validator("source")(lambda v: _choice(v, CATALOG_SOURCES))
    _format = field_validator("format")(lambda v: _choice(v, CATALOG_FORMATS))

    _column_map = field_validator("column_map")(
        lambda mapping: _mapped_onto(mapping, s.CATALOG_COLUMNS, "catalog columns")
    )

    @field_validator("not_products")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        trimmed = [i.strip() for i in ids]  # ids are compared as ingest stores them: trimmed
        if "" in trimmed:
            raise ValueError("an empty id; list the item ids as the interaction files write them")
        return trimmed

    @field_validator("unknown_items")
    @classmethod
    def _policy(cls, value: str | None) -> str | None:
        return None if value is None else _choice(value, UNKNOWN_ITEM_POLICIES)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        if self.source == "files" and not self.files:
            raise ValueError('source = "files" needs files = "<glob of the catalog files>"')
        if self.source == "none" and self.unknown_items == "reject":
            raise ValueError(
                'source = "none" has no catalog to check items against: every item would be'
                ' rejected; leave out unknown_items or set it to "keep"'
            )
        return self

    @property
    def unknown_item_policy(self) -> str:
        """reject or keep: what dbt does with interactions of items not in the catalog."""
        return self.unknown_items or ("keep" if self.source == "none" else "reject")


class Transform(_Section):
    feature_half_life_days: float = Field(30.0, gt=0)
    as_of: str | None = None


class ColdStart(_Section):
    recent_half_life_days: float = Field(14.0, gt=0)
    few_interactions: int = Field(3, ge=0)
    category_weight: float = Field(0.5, ge=0, le=1)
    cold_items: bool = True
    price_bands: int = Field(5, ge=1, le=1_000)
    cold_item_shrink: float = Field(0.5, ge=0)


TUNE_SPACE = {  # [train.tune.space.<family>] by default: each family's usual good region
    "als": {
        "factors": [16, 64, 128],
        "regularization": [0.2, 5.0, 50.0],
        "alpha": [5.0, 40.0],
        "weighting": ["linear", "bm25"],
        "recency_half_life_days": [0.0, 30.0],
    },
    "ease": {
        "l2": [20.0, 100.0, 500.0, 2000.0],
        "dropout": [0.0, 0.3],
        "zero_diagonal": [True, False],
    },
    "bpr": {"factors": [64], "learning_rate": [0.005, 0.01], "iterations": [100]},
    "itemknn": {"similarity": ["cosine", "bm25"], "neighbours": [50, 200]},
    "hybrid": {"weight": [0.2, 0.5]},
}
# [train] keys of the families before they had their own tables ([train.<family>]): where each
# is set now (a file that still sets one fails at start, naming its new place)
MOVED_TO_FAMILY = {
    "factors": ("als", "factors"),
    "iterations": ("als", "iterations"),
    "regularization": ("als", "regularization"),
    "ease_l2": ("ease", "l2"),
    "ease_dropout": ("ease", "dropout"),
    "ease_zero_diagonal": ("ease", "zero_diagonal"),
    "ease_max_items": ("ease", "max_items"),
    "bpr_factors": ("bpr", "factors"),
    "bpr_learning_rate": ("bpr", "learning_rate"),
    "bpr_regularization": ("bpr", "regularization"),
    "bpr_iterations": ("bpr", "iterations"),
    "knn_similarity": ("itemknn", "similarity"),
    "knn_neighbours": ("itemknn", "neighbours"),
    "hybrid_weight": ("hybrid", "weight"),
}


class Tune(_Section):
    """[train.tune] (models_ml.tune): validation folds inside the training period and a search
    space per model family ([train.tune.space.<family>], {setting: [values]})."""

    validation_days: float | None = Field(None, gt=0)  # None: [train.evaluation] holdout_days
    folds: int = Field(3, ge=1, le=20)  # rolling validation windows, averaged
    # per family: a seeded sample of its grid (all if smaller)
    n_trials: int = Field(8, ge=1, le=10_000)
    # the search runs on the training rows of a seeded sample of this many users (None: all);
    # the chosen family and values are then trained on every user
    max_users: int | None = Field(20_000, ge=100, le=MAX_USERS)
    space: dict[str, dict[str, list[Any]]] = Field(default_factory=lambda: deepcopy(TUNE_SPACE))
    # `recomart demo` on a shop's own files (no generator) chooses the family and parameters
    # first and trains the choice (not written to the file); false trains [train] as written
    in_demo: bool = True
    # wall-clock seconds the search may take; a candidate whose estimated cost does not fit in
    # what is left is skipped and named in the report; at most a week (604,800 s)
    budget_s: float = Field(120.0, gt=0, le=604_800)
    # the blend of the repeat score searched on top of the best candidate, when
    # [train] repeatable_events allows repeats ([train] repeat_weight)
    # (1.0: the user's repeat items first, in repeat-score order, then the model's own order)
    repeat_weights: list[float] = Field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])

    @field_validator("repeat_weights")
    @classmethod
    def _blend_weights(cls, weights: list[float]) -> list[float]:
        if not weights or any(not 0 <= w <= 1 for w in weights):
            raise ValueError(f"give one or more weights between 0 and 1, got {weights}")
        if len(weights) > 100:  # each is one more evaluation of the best candidate
            raise ValueError(f"give at most 100 weights, got {len(weights)}")
        return weights

    @field_validator("space", mode="before")
    @classmethod
    def _per_family(cls, space: Any) -> Any:
        if isinstance(space, dict):
            flat = [key for key, value in space.items() if not isinstance(value, dict)]
            if flat:
                raise ValueError(
                    f"[train.tune.space] is one table per model family, e.g. "
                    f"[train.tune.space.als] (got {', '.join(flat)} directly in it)"
                )
        return space


HOLDOUTS = ("auto", "last_days", "last_share", "leave_last_n")


class Evaluation(_Section):
    """[train.evaluation]: the holdout and the champion gate's statistics (models_ml.split,
    models_ml.registry).

    holdout: auto | last_days | last_share | leave_last_n; holdout_days: the test period of
    last_days; holdout_share: the share of the time span of last_share; leave_last_n: the test
    interactions per user of leave_last_n; min_eval_users: the fewest scored users for auto to keep
    last_days, and for the gate to promote anything; min_eval_share: the least share, of the users
    leave_last_n would score, that auto's last_days must score; bootstrap_samples and confidence:
    the gate's paired bootstrap; max_eval_users: above it, a seeded random sample of this many
    warm users is scored (the same users for the model, the baselines and the champion).
    Upper bounds (work): leave_last_n 1,000; bootstrap_samples 100,000; min_eval_users and
    max_eval_users 10,000,000.
    """

    holdout: str = "auto"
    holdout_days: float = Field(30.0, gt=0)
    holdout_share: float = Field(0.1, gt=0, lt=1)
    leave_last_n: int = Field(1, ge=1, le=1_000)
    min_eval_users: int = Field(50, ge=1, le=MAX_USERS)
    min_eval_share: float = Field(0.5, ge=0, le=1)
    bootstrap_samples: int = Field(1000, ge=1, le=100_000)
    confidence: float = Field(0.95, gt=0, lt=1)
    max_eval_users: int = Field(100_000, ge=1, le=MAX_USERS)

    _holdout = field_validator("holdout")(lambda v: _choice(v, HOLDOUTS))

    @classmethod
    def from_config(cls, train_cfg: dict[str, Any]) -> Evaluation:
        """The evaluation settings of a [train] section given as a plain dict (as in the TOML);
        ConfigError names the key and what it may be. A loaded configuration has them typed:
        cfg.settings.train.evaluation."""
        try:
            return cls.model_validate(train_cfg.get("evaluation") or {})
        except ValidationError as exc:
            raise ConfigError(
                "; ".join(_describe(e, ["train", "evaluation"]) for e in exc.errors())
            ) from None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def with_holdout_days(self, days: float) -> Evaluation:
        """The same settings with another last_days period (tuning's validation_days)."""
        return Evaluation(**{**self.model_dump(), "holdout_days": days})


NESTED = ("event_weights", "cold_start", "tune", "evaluation", "families")  # [train]'s tables
EVENT_WEIGHTS = {s.VIEW: 1.0, s.ADD_TO_CART: 2.0, s.PURCHASE: 4.0, s.RETURN_EVENT: -4.0}


class Train(_Section):
    """[train]: the recommender, its evaluation and the registry gate."""

    seed: int = 42
    # upper bounds of what sizes memory or work: MAX_K, MAX_FACTORS, MAX_ITERATIONS (above)
    k: int = Field(10, ge=1, le=MAX_K)
    alpha: float = Field(40.0, gt=0)
    weighting: Literal["linear", "bm25"] = "bm25"
    bm25_k1: float = Field(100.0, gt=0)
    bm25_b: float = Field(0.8, ge=0, le=1)
    recency_half_life_days: float = Field(30.0, ge=0)
    weight_by: str = "events"  # events | quantity | value: what scales an event's weight
    # the model family (a name of the registry, models_ml.families); each family's own
    # settings are its table [train.<family>] (validated by its model: models_ml.families.check)
    family: str = "als"
    families: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # repeat behaviour: the event types whose items may be recommended to the same user again
    # (re-views, "buy it again", replenishment); an item the user had with any other event type
    # (or returned) is never recommended to them again, in training, evaluation, batch and API
    repeatable_events: list[str] = Field(default_factory=list)
    # the repeat score of a known item: the user's own events on it, each weighing its event
    # weight x 0.5 ** (age_days / repeat_half_life_days), age from the user's newest event
    repeat_half_life_days: float = Field(30.0, gt=0)
    # the model's blend: (1 - w) x learned score + w x repeat score, each scaled (models_ml);
    # 0: the learned scores alone. `recomart tune` chooses it on validation
    repeat_weight: float = Field(0.0, ge=0, le=1)
    min_relevant_rating: float = 0.0
    refit_on_all_data: bool = True
    plot_max_k: int = Field(20, ge=1, le=MAX_K)
    rating_regularization: float = Field(5.0, ge=0)
    model_name: str = "recomart-recommender"
    min_improvement: float = Field(0.0, ge=0)
    event_weights: dict[str, float] = Field(default_factory=lambda: dict(EVENT_WEIGHTS))
    cold_start: ColdStart = Field(default_factory=ColdStart)
    tune: Tune = Field(default_factory=Tune)
    evaluation: Evaluation = Field(default_factory=Evaluation)

    _weight_by = field_validator("weight_by")(lambda v: _choice(v, WEIGHT_BY))

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        """Old keys name their new place; the tables of the families ([train.<family>], any
        table that is not one of [train]'s own) go to `families`, checked by
        models_ml.families.check."""
        if not isinstance(data, dict):
            return data
        if "holdout_days" in data:
            raise ValueError("holdout_days has moved: set it in [train.evaluation]")
        moved = [key for key in data if key in MOVED_TO_FAMILY]
        if moved:
            places = ", ".join(
                f"{key} -> [train.{MOVED_TO_FAMILY[key][0]}] {MOVED_TO_FAMILY[key][1]}"
                for key in moved
            )
            family, key = MOVED_TO_FAMILY[moved[0]]
            raise ValueError(
                f"moved: set [train.{family}] {key} (each model family has its own table now:"
                f" {places})"
            )
        tables = {
            key: value
            for key, value in data.items()
            if isinstance(value, dict) and key not in cls.model_fields
        }
        if tables:
            data = {key: value for key, value in data.items() if key not in tables}
            data["families"] = {**(data.get("families") or {}), **tables}
        return data

    def family_table(self, family: str) -> dict[str, Any]:
        """[train.<family>] as written (empty when absent)."""
        return dict(self.families.get(family) or {})

    @field_validator("repeatable_events")
    @classmethod
    def _repeatable(cls, events: list[str]) -> list[str]:
        for event in events:
            if event not in s.EVENT_TYPES:
                raise ValueError(
                    f"{event!r} is not an event type that can repeat; ours are"
                    f" {', '.join(s.EVENT_TYPES)} (a returned item is never recommended again)"
                )
        return list(dict.fromkeys(events))

    @field_validator("event_weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]) -> dict[str, float]:
        allowed = (*s.EVENT_TYPES, s.RETURN_EVENT)
        for event, weight in weights.items():
            if event not in allowed:
                raise ValueError(f"{event!r} is not an event type; ours are {', '.join(allowed)}")
            if event == s.RETURN_EVENT and weight > 0:
                raise ValueError(f"the return weight must be 0 or negative, got {weight}")
            if event != s.RETURN_EVENT and weight <= 0:
                raise ValueError(f"the weight of {event!r} must be positive, got {weight}")
        missing = [e for e in s.EVENT_TYPES if e not in weights]
        if missing:
            raise ValueError(f"no weight for {', '.join(missing)}")
        return weights


class Serve(_Section):
    """[serve]: the recommendation API (serving). The API key comes from the
    environment ($RECOMART_API_KEY), never from this file."""

    host: str = "127.0.0.1"
    # Upper bounds: what sizes memory or work is bounded (a larger value fails at start)
    port: int = Field(8000, ge=0, le=65535)
    # registry polling for a new champion; 0: never; at most a day
    poll_seconds: float = Field(10.0, ge=0, le=86_400)
    max_k: int = Field(100, ge=1, le=MAX_K)  # k is bounded 1..max_k; max_k at most 1,000
    max_batch: int = Field(500, ge=1, le=10_000)  # users per POST /recommendations/batch
    # up to this many users, lists are computed at load; with max_k at most
    # MAX_PRECOMPUTED_CELLS cells (precompute_max_users x max_k)
    precompute_max_users: int = Field(100_000, ge=0, le=MAX_USERS)
    # larger request bodies: 413, never read; at most 64 MiB
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1024**2)
    body_timeout_seconds: float = Field(10.0, gt=0, le=600)  # a body slower than this: 408
    # explain=true costs a solve per item: k at most this (at most 100)
    max_explain_k: int = Field(20, ge=1, le=100)
    # requests in flight (idle connections do not count); beyond: 503 + Retry-After, never
    # /health (at most 10,000)
    limit_concurrency: int = Field(256, ge=1, le=10_000)
    # a request head must be complete within this, from the connection's opening or a
    # keep-alive request's first byte; else 408 and closed
    head_timeout_seconds: float = Field(10.0, gt=0, le=600)
    max_head_bytes: int = Field(16_384, ge=1024, le=1_048_576)  # larger head: 431, closed
    # open connections in all / per client address; beyond: the oldest idle one is closed
    max_connections: int = Field(512, ge=1, le=100_000)
    max_connections_per_client: int = Field(64, ge=1, le=100_000)
    # an idle keep-alive connection is closed after this (at most 10 minutes)
    timeout_keep_alive: float = Field(5.0, gt=0, le=600)
    # the rule sets file (models_ml.rules), relative to the project home; absent: no rules
    rules: str = "rules.toml"
    # POST /events (serving.spool): requests waiting for the disk at most (beyond: 503), and
    # the size above which a spool file is closed (renamed .jsonl) and a new one opened
    events_queue: int = Field(1024, ge=1, le=1_000_000)
    events_rotate_bytes: int = Field(64 * 1024**2, ge=1024, le=1024**4)
    # fresh events kept in memory and folded into recommendations: the last this many per
    # user or session, for at most this many ids (the least recently active forgotten first)
    fresh_events_per_user: int = Field(200, ge=1, le=10_000)
    fresh_users: int = Field(100_000, ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _precomputed(self) -> Serve:
        cells = self.precompute_max_users * self.max_k
        if cells > MAX_PRECOMPUTED_CELLS:
            raise ValueError(
                f"precompute_max_users x max_k = {cells:,} cells of lists computed at load, more"
                f" than {MAX_PRECOMPUTED_CELLS:,} (a few GB of memory): lower one of them"
            )
        return self


class Generator(_Section):
    """[generator]: the demo data (recomart.demo.datagen.generate takes these keys). Checked when
    the file is read; the configuration keeps the table as written (a dict of the given keys)."""

    seed: int = 42
    n_users: int = Field(5000, ge=1, le=10_000_000)
    n_items: int = Field(1000, ge=1, le=10_000_000)
    n_interactions: int = Field(100_000, ge=1, le=100_000_000)
    start: date = date(2026, 5, 1)  # first day of activity (UTC), "YYYY-MM-DD"
    days: int = Field(184, ge=1, le=36_500)
    defect_rate: float = Field(0.01, ge=0, le=0.5)
    defect_shares: dict[str, float] | None = None  # {defect class: share}, normalised

    @field_validator("start", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise ValueError(f'a day such as "2026-05-01", got {value!r}') from None
        return value

    @classmethod
    def checked(cls, table: dict[str, Any]) -> dict[str, Any]:
        """The [generator] table as written, once every key and value is known to be valid;
        ValueError naming the wrong keys (and the valid ones) otherwise."""
        try:
            cls.model_validate(table)
        except ValidationError as exc:
            valid = ", ".join(cls.model_fields)
            raise ValueError(
                "; ".join(
                    f"has no setting {'.'.join(map(str, e['loc']))!r} (a typo? its settings are"
                    f" {valid})"
                    if e["type"] == "extra_forbidden"
                    else f"{'.'.join(map(str, e['loc']))}: {_message(e)}"
                    for e in exc.errors()
                )
            ) from None
        return table


class Spark(_Section):
    """[spark]: the Spark the pipeline uses when engine = "spark" (recomart_core/engine.py)."""

    master: str = "local[*]"  # local[N] | spark://host:7077 | yarn | k8s://...
    driver_memory: str = "2g"  # the driver JVM's heap (spark.driver.memory)
    shuffle_partitions: int = Field(4, ge=1, le=100_000)  # spark.sql.shuffle.partitions
    conf: dict[str, str] = Field(default_factory=dict)  # any other Spark setting, as written

    @field_validator("master")
    @classmethod
    def _master(cls, value: str) -> str:
        if not re.fullmatch(r"local(\[(\*|\d+)(,\d+)?\])?|(spark|k8s|mesos)://\S+|yarn", value):
            raise ValueError(
                f"must be local, local[N], local[*], spark://host:port, yarn or k8s://..., got"
                f" {value!r}"
            )
        return value


class PathSettings(_Section):
    """[paths], relative to the project home."""

    generated: str = "data/generated"  # the embedded default data (generator output)
    interactions_glob: str = "data/generated/interactions/*.csv"
    warehouse: str = "data/warehouse/recomart.duckdb"
    dlt_pipelines: str = "data/dlt"
    mlflow: str = "data/mlflow"
    models: str = "data/models"
    logs: str = "logs"
    reports: str = "reports"
    raw: str = "data/raw"  # the landing area: input as it arrived, append-only (DVC-versioned)
    features: str = "data/features"  # the published marts as Parquet, after the gate (DVC)
    lake: str = "data/lake"  # engine spark: the raw datasets as Parquet, a folder per table
    spark: str = "data/spark"  # engine spark: Spark's warehouse, metastore and spark-defaults.conf
    events: str = "data/events"  # POST /events' spool files, one JSON event a line (serving.spool)
    # the feature store's own DuckDB file (saved feature versions and their registry); None:
    # feature_store.duckdb beside the warehouse. Never the warehouse itself.
    feature_store: str | None = None


class Settings(_Section):
    """The whole of recomart.toml, one typed section per table."""

    engine: str = "duckdb"  # duckdb: one machine (the default) | spark: Apache Spark ([spark])
    paths: PathSettings = Field(default_factory=PathSettings)
    generator: dict[str, Any] | None = None  # absent: no demo data (a shop's own files)
    ingest: Ingest = Field(default_factory=Ingest)
    ratings: Ratings = Field(default_factory=Ratings)
    catalog: Catalog = Field(default_factory=Catalog)
    transform: Transform = Field(default_factory=Transform)
    train: Train = Field(default_factory=Train)
    serve: Serve = Field(default_factory=Serve)
    spark: Spark = Field(default_factory=Spark)

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        return _choice(value, ENGINES)

    @field_validator("generator")
    @classmethod
    def _generator(cls, table: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if table is None else Generator.checked(table)

    @property
    def accepted_events(self) -> list[str]:
        """The event types the marts accept: ours, and `return` when returns are negative
        feedback (dbt's var event_types, Soda's EVENT_TYPES)."""
        negative = self.ingest.interactions.returns.action == "negative"
        return [*s.EVENT_TYPES, *([s.RETURN_EVENT] if negative else [])]

    @model_validator(mode="after")
    def _across_sections(self) -> Settings:
        returns = self.ingest.interactions.returns
        if returns.action == "negative" and self.train.event_weights.get(s.RETURN_EVENT, 0) >= 0:
            raise ValueError(
                '[ingest.interactions.returns] action = "negative" needs a negative weight for'
                " return in [train.event_weights] (e.g. return = -4.0)"
            )
        return self


def parse(raw: dict[str, Any], source: str = "recomart.toml") -> Settings:
    """Validate the parsed TOML; raise ConfigError naming each wrong key and what is allowed."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def _message(error: dict) -> str:
    return re.sub(r"^(Value|Assertion) error, ", "", error["msg"])


def _describe(error: dict, within: list[str] | None = None) -> str:
    section, key = _split([*(within or []), *(str(part) for part in error["loc"])])
    if not section and key == ["generator"]:  # a plain table checked by Generator
        section, key = key, []
    message = _message(error)
    where = f"[{'.'.join(section)}]" if section else ""
    if error["type"] == "extra_forbidden":
        return f"{where} has no setting {'.'.join(key)!r} (a typo?)"
    return f"{where} {'.'.join(key)}: {message}" if key else f"{where} {message}".strip()


def _split(loc: list[str]) -> tuple[list[str], list[str]]:
    """(the sections, the key) of an error location: sections are the nested models."""
    model: type[BaseModel] = Settings
    for position, part in enumerate(loc):
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return loc[:position], loc[position:]
        model = annotation
    return loc, []
