"""Request and response bodies of the API (they make the OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

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
                " (served the cold-start list)",
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
