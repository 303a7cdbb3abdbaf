"""GET /health (ready only when a model is loaded: 200, else 503 with the reason) and GET
/metrics (Prometheus text, serving.metrics). Both stay open when an API key is set, and /health
answers beyond limit_concurrency too (serving.guard)."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from serving import schemas
from serving.dependencies import AppMetrics, Holder
from serving.metrics import CONTENT_TYPE

router = APIRouter()


@router.get(
    "/health",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "no model loaded"}},
    summary="ready only when a model is loaded",
)
async def health(holder: Holder) -> JSONResponse:
    current = holder.current
    if current is None:
        body = {"status": "not ready", "model_version": None, "reason": holder.not_ready_reason}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "model_version": current.info.version})


@router.get("/metrics", response_class=Response, summary="Prometheus text format")
async def prometheus(holder: Holder, metrics: AppMetrics) -> Response:
    current = holder.current
    info = None
    if current is not None:
        i = current.info
        info = {"name": i.name, "version": i.version, "run_id": i.run_id or ""}
    return Response(metrics.render(info, holder.reloads), media_type=CONTENT_TYPE)
