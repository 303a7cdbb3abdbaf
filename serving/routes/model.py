"""GET /model: the served model (registry version, training run, metrics, data cutoff, size)
and how a new champion is picked up."""

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from serving import schemas
from serving.dependencies import Served, Settings
from serving.routes.common import PROBLEMS, reload_text

router = APIRouter()


@router.get(
    "/model",
    response_model=schemas.ModelResponse,
    responses=PROBLEMS,
    summary="the served model: registry version, training run, metrics, data cutoff",
)
async def model_info(served: Served, serve: Settings) -> dict[str, Any]:
    return {
        **asdict(served.info),
        "family": served.family,
        "family_title": served.family_title,
        "n_users": served.n_users,
        "n_items": served.n_items,
        "reload": reload_text(serve),
    }
