"""GET /items/{item_id}/similar?k=10&surface=product: the k items closest to an item (the
family's item similarity) under the surface's rules (models_ml.rules); 404 for an item the
served model does not know. PATCH /items/{item_id} {"in_stock": false}: a stock change that
applies at once to every list filtered on in_stock (kept across model reloads)."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from models_ml.rules import UnknownAttribute
from serving import schemas
from serving.dependencies import Holder, Served
from serving.dependencies import Rules as RuleSetDep
from serving.routes.common import (
    BODY_PROBLEMS,
    ID_PATH,
    PROBLEMS,
    SURFACE_QUERY,
    list_length,
    rules_for,
    unknown_attribute,
)
from serving.settings import ServeSettings

UNKNOWN_ITEM = {404: {"model": schemas.Problem, "description": "unknown item"}}


def router(settings: ServeSettings, default_k: int) -> APIRouter:
    """The routes, k 1..max_k (default default_k) in their schema."""
    routes = APIRouter()
    K = list_length(settings.max_k)

    @routes.get(
        "/items/{item_id}/similar",
        response_model=schemas.SimilarResponse,
        responses={**PROBLEMS, **UNKNOWN_ITEM},
        summary="the k items closest to an item (the model's item similarity; `similarity` says"
        " which), under the surface's rules",
    )
    async def similar(
        served: Served,
        rule_set: RuleSetDep,
        item_id: Annotated[str, Path(**ID_PATH)],
        k: K = default_k,
        surface: Annotated[str | None, SURFACE_QUERY] = None,
    ) -> dict[str, Any]:
        if not served.has_item(item_id):
            raise HTTPException(404, f"item {item_id!r} is unknown to model {served.info.version}")
        rules = rules_for(rule_set, surface)
        try:
            items = (
                served.similar(item_id, k)
                if rules.empty
                else served.similar_with_rules(item_id, k, rules)
            )
        except UnknownAttribute as exc:
            raise unknown_attribute(exc) from None
        return {
            "item_id": item_id,
            "k": k,
            "model_version": served.info.version,
            "rule_set": rule_set.describe(surface),
            "similarity": served.similarity_text,
            "items": items,
        }

    @routes.patch(
        "/items/{item_id}",
        response_model=schemas.StockAnswer,
        responses={**BODY_PROBLEMS, **UNKNOWN_ITEM},  # a body: 400, 408, 413 too
        summary="change an item's stock now: lists filtered on in_stock leave it out at once",
    )
    async def patch_item(
        holder: Holder,
        served: Served,
        item_id: Annotated[str, Path(**ID_PATH)],
        body: schemas.StockUpdate,
    ) -> dict[str, Any]:
        if not served.can_list(item_id):
            raise HTTPException(
                404, f"item {item_id!r} is not listed by model {served.info.version}"
            )
        holder.set_stock(item_id, body.in_stock)
        return {
            "item_id": item_id,
            "in_stock": body.in_stock,
            "model_version": served.info.version,
        }

    return routes
