"""GET /items/{item_id}/similar?k=10: the k items closest to an item (cosine of item factors);
404 for an item the served model does not know."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from serving import schemas
from serving.dependencies import Served
from serving.routes.common import ID_PATH, PROBLEMS, list_length
from serving.settings import ServeSettings


def router(settings: ServeSettings, default_k: int) -> APIRouter:
    """The route, k 1..max_k (default default_k) in its schema."""
    routes = APIRouter()
    K = list_length(settings.max_k)

    @routes.get(
        "/items/{item_id}/similar",
        response_model=schemas.SimilarResponse,
        responses={**PROBLEMS, 404: {"model": schemas.Problem, "description": "unknown item"}},
        summary="the k items closest to an item (the model's item similarity; `similarity` says"
        " which)",
    )
    async def similar(
        served: Served, item_id: Annotated[str, Path(**ID_PATH)], k: K = default_k
    ) -> dict[str, Any]:
        if not served.has_item(item_id):
            raise HTTPException(404, f"item {item_id!r} is unknown to model {served.info.version}")
        return {
            "item_id": item_id,
            "k": k,
            "model_version": served.info.version,
            "similarity": served.similarity_text,
            "items": served.similar(item_id, k),
        }

    return routes
