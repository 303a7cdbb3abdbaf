"""POST /admin/reload: check the registry for a new champion now (polling does it
periodically). Behind the key when one is set, else loopback clients only (serving.guard)."""

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from serving import schemas
from serving.dependencies import Holder
from serving.routes.common import PROBLEMS

router = APIRouter()


@router.post(
    "/admin/reload",
    response_model=schemas.Reload,
    responses={
        401: PROBLEMS[401],
        403: {"model": schemas.Problem, "description": "not loopback and no API key set"},
    },
    summary="check the registry for a new champion now (polling does it periodically)",
)
async def reload(holder: Holder) -> dict[str, Any]:
    reloaded = await run_in_threadpool(holder.refresh)
    current = holder.current
    return {
        "reloaded": reloaded,
        "model_version": current.info.version if current else None,
        "reason": None if current else holder.not_ready_reason,
    }
