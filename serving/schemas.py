"""Request and response bodies of the API (they make the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from recomart_core.rulesets import Rules
from recomart_core.schema import ID_MAX_LENGTH, ID_PATTERN, ID_RULES  # noqa: F401 (the API's)

# ids are the shop's own (SKUs, UUIDs, e-mail hashes): text, 1..256 characters, no control
# characters; "007" and "7" are different ids. The one rule, shared with ingest (schema.py)
Id = Annotated[str, Field(**ID_RULES)]
Strategy = Literal["model", "blend", "popular"]
# exclude_known, in the query, the batch body and the answers
EXCLUDE_KNOWN = (
    "true: leave out what [train] repeatable_events excludes, i.e. every item the user had,"
    " or, when event types are repeatable (views, carts, ...), the items the user had with"
    " another event type or returned (those had only with repeatable types may come back);"
    " false: leave out nothing"
)


class Item(BaseModel):
    item_id: str
    title: str | None = Field(description="catalog title (null if the catalog has none)")
    category: str | None
    price: float | None


class Driver(Item):
    contribution: float = Field(description="this item's share of the model's score")


Reason = Literal["model", "boosted", "pinned", "fallback"]


class RankedItem(Item):
    rank: int = Field(description="1 = best")
    score: float = Field(
        description="comparable within one list only (after boosts; a fallback item's recent"
        " popularity)"
    )
    reason: Reason = Field(
        "model",
        description="why it is listed: model (the model's score), boosted (a boost raised"
        " it), pinned (a pin put it here), fallback (the rules left the list short: a popular"
        " item that obeys them)",
    )


class RepeatPart(BaseModel):
    weight: float = Field(
        description="[train] repeat_weight: the blend's share of the repeat score"
    )
    score: float = Field(description="the user's own repeat score of this item (0: not theirs)")
    scaled: float = Field(description="score over the user's best repeat score")
    contribution: float = Field(description="weight x scaled: its part of the listed score")


class Recommendation(RankedItem):
    because: list[Driver] | None = Field(
        None, description="explain=true: the user's items that drove this one most"
    )
    similar_liked_items: list[str] | None = Field(
        None, description="explain=true, cold item: the user's items of its category and price"
    )
    repeat: RepeatPart | None = Field(
        None, description="explain=true, repeat_weight > 0: the repeat part of the score"
    )


FoldIn = Literal["solved", "row", "row and solved", "mean of item factors"]
FOLD_IN = (
    "how the user's events since training were folded into the scores (null: none were):"
    " solved (ALS: the user's factors re-solved by least squares from their history plus the"
    " events), row (EASE, item-kNN: x_u @ W of the updated history), row and solved (the"
    " hybrid: both parts), mean of item factors (BPR cannot fold in: the mean of the factors"
    " of the user's items)"
)


class Recommendations(BaseModel):
    user_id: str
    strategy: Strategy = Field(
        description="model: the served model's list; blend: few interactions, the model blended"
        " with the user's categories; popular: no history, recent popularity"
    )
    family: str = Field(
        description="the served model's family, e.g. ease; popularity when the baseline is served"
    )
    cold_start: bool = Field(description="true when the user has no or little history")
    strategy_description: str
    fold_in: FoldIn | None = Field(None, description=FOLD_IN)
    fresh_events: int = Field(
        0, description="the user's events since start (POST /events) the list reflects"
    )
    items: list[Recommendation]


class RuleSetInfo(BaseModel):
    name: str = Field(description="the rule set's name (rules.toml)")
    version: str = Field(description="the version the file declares")
    digest: str = Field(description="sha256 of the file, first 12 hex digits ('' without one)")
    surface: str = Field(description="whose defaults applied: home, product, basket, email, ...")


class RecommendationsResponse(Recommendations):
    k: int
    exclude_known: bool = Field(description=EXCLUDE_KNOWN)
    model_version: str
    rule_set: RuleSetInfo


EventType = Literal["view", "add_to_cart", "purchase", "return"]


class Event(BaseModel):
    """One thing a user or visitor did to an item (POST /events), in our event names."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id | None = Field(
        None,
        description="the shop's user id (one of user_id and session_id is required)",
        examples=["u-1042"],
    )
    session_id: Id | None = Field(
        None,
        description="an anonymous visitor's session id, when there is no user_id (its events"
        " make the visitor's list, asked for with the same id)",
        examples=["s-7f3a9c"],
    )
    item_id: Id = Field(description="the shop's item id", examples=["sku-2231"])
    event_type: EventType = Field(
        description="our names: view, add_to_cart, purchase (never offered again at once),"
        " return (weighs against the item)",
        examples=["view"],
    )
    timestamp: AwareDatetime | None = Field(
        None,
        description="when it happened, ISO-8601 with a time zone (default: when received)",
        examples=["2026-12-07T22:15:00Z"],
    )
    request_id: Annotated[str, Field(max_length=256)] | None = Field(
        None,
        description="the recommendations request the item was listed by, if any (attribution)",
        examples=["req-5b1e"],
    )
    position: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None, description="the item's rank in that list, 1 = first", examples=[3]
    )

    @field_validator("timestamp")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """The time in UTC (the spool's); a value UTC cannot hold (year 9999 at +23:59) is
        refused."""
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the timestamp is out of range in UTC") from None

    @model_validator(mode="after")
    def _someone(self) -> Event:
        if self.user_id is None and self.session_id is None:
            raise ValueError("one of user_id and session_id is required")
        return self

    @property
    def who(self) -> str:
        """Whose list the event changes: user_id, else session_id."""
        return self.user_id or self.session_id or ""

    def at(self, received: datetime) -> datetime:
        """When it happened: timestamp, else the time received."""
        return self.timestamp or received


class EventsAccepted(BaseModel):
    accepted: int = Field(description="events written to the spool and folded in", examples=[1])


class StockUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    in_stock: bool = Field(description="false: no list shows it where in_stock is filtered on")


class StockAnswer(BaseModel):
    item_id: str
    in_stock: bool
    model_version: str


class BatchResponse(BaseModel):
    k: int
    exclude_known: bool = Field(description=EXCLUDE_KNOWN)
    model_version: str
    results: list[Recommendations]


class SimilarResponse(BaseModel):
    item_id: str
    k: int
    model_version: str
    rule_set: RuleSetInfo
    similarity: str = Field(description="what the served model's family measures as closeness")
    items: list[RankedItem]


class ModelResponse(BaseModel):
    name: str
    version: str
    family: str = Field(description="the model family, e.g. als, ease, popularity")
    family_title: str = Field(description="the family's name in words")
    alias: str
    run_id: str | None
    trained_at: str | None
    data_cutoff: str | None = Field(description="the newest interaction the model was fitted on")
    holdout_cutoff: str | None
    metrics: dict[str, float] = Field(description="the training run's metrics")
    source: str | None
    loaded_at: str | None
    item_metadata: str
    n_users: int
    n_items: int
    reload: str


class Health(BaseModel):
    status: Literal["ready", "not ready"]
    model_version: str | None = None
    reason: str | None = None


class Reload(BaseModel):
    reloaded: bool
    model_version: str | None
    reason: str | None = None


class Problem(BaseModel):
    detail: str


def batch_request_model(max_k: int, max_batch: int, default_k: int) -> type[BaseModel]:
    """POST /recommendations/batch body, with the configured bounds in its schema."""
    return create_model(
        "BatchRequest",
        __config__=ConfigDict(extra="forbid"),
        user_ids=(
            Annotated[list[Id], Field(min_length=1, max_length=max_batch)],
            Field(description=f"1..{max_batch} user ids"),
        ),
        k=(Annotated[int, Field(ge=1, le=max_k)], default_k),
        exclude_known=(bool, Field(True, description=EXCLUDE_KNOWN, examples=[True])),
    )


def events_request_model(max_batch: int) -> type:
    """POST /events body: one event or a list of 1..max_batch."""
    return Event | Annotated[list[Event], Field(min_length=1, max_length=max_batch)]


def recommend_request_model(max_k: int, default_k: int) -> type[BaseModel]:
    """POST /recommendations body: who, how many, where, and any rule of models_ml.rules.Rules
    (a field the body sets replaces the surface's default; the others keep it)."""
    return create_model(
        "RecommendRequest",
        __base__=Rules,
        user_id=(
            Id | None,
            Field(
                None,
                description="the shop's user id (unknown: the cold-start list)",
                examples=["42"],
            ),
        ),
        session_id=(
            Id | None,
            Field(
                None,
                description="an anonymous visitor's session id, when there is no user_id"
                " (served the cold-start list, or from its events: POST /events)",
                examples=["s-81f2"],
            ),
        ),
        n=(
            Annotated[int, Field(ge=1, le=max_k)],
            Field(default_k, description=f"list length, 1..{max_k}", examples=[10]),
        ),
        surface=(
            str | None,
            Field(
                None,
                description="the rule set surface whose defaults apply (null: its default_surface)",
                examples=["home"],
            ),
        ),
        context_item_ids=(
            Annotated[list[Id], Field(max_length=100)],
            Field(
                [],
                description="the product page's or basket's items: never listed",
                examples=[["sku-9"]],
            ),
        ),
        exclude_known=(bool, Field(True, description=EXCLUDE_KNOWN, examples=[True])),
    )
