"""The FastAPI application: create_app(cfg) -> app. Routes read holder.current once per request.

GET  /recommendations/{user_id}?k=10&exclude_known=true&explain=false
POST /recommendations/batch            {"user_ids": [...], "k": 10, "exclude_known": true}

exclude_known=true leaves out what [train] repeatable_events excludes (the model's own rule,
models_ml.matrix.excluded_pairs): every item the user had, or with repeatable event types the
items the user had with another type or returned; explain=true adds the repeat part of a
score when the model blends repeat scores (repeat_weight > 0).
GET  /items/{item_id}/similar?k=10
GET  /model    GET /health    GET /metrics    POST /admin/reload    GET /docs (OpenAPI)

Bad input answers 422 (FastAPI's validation detail plus a one-line `message`), an unknown item
404, no model yet 503 telling to run `make train`, a missing or wrong API key 401 (only when
$RECOMART_API_KEY is set; /health, /metrics and the docs stay open). Limits before any route
(serving.guard): bodies over [serve] max_body_bytes 413, not all in within
body_timeout_seconds 408, more than limit_concurrency requests in flight 503 (never /health),
admin routes loopback-only without a key (403); explain=true takes k up to max_explain_k,
EXPLAIN_SLOTS at a time; a batch is scored in a worker thread, BATCH_SLOTS at a time. The
connections themselves are bounded before a request exists (serving.connections).
"""

import asyncio
import gc
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from recomart_core import config
from serving import schemas
from serving.guard import Guard, key_ok
from serving.holder import ModelHolder
from serving.loader import RegistrySource
from serving.metrics import CONTENT_TYPE, Metrics
from serving.settings import API_KEY_ENV, API_KEY_HEADER, ServeSettings
from serving.snapshot import ServingModel

EXPLAIN_SLOTS = 2  # explanations computed at once (each in a worker thread)
BATCH_SLOTS = 2  # batch requests scored at once (each in a worker thread)
ID_PATH = {
    **schemas.ID_RULES,
    "description": f"the shop's id: 1..{schemas.ID_MAX_LENGTH} characters, no control characters",
}
PROBLEMS = {
    401: {"model": schemas.Problem, "description": f"{API_KEY_HEADER} missing or wrong"},
    503: {"model": schemas.Problem, "description": "no model loaded yet: run `make train`"},
}


def create_app(
    cfg: config.Config | None = None,
    settings: ServeSettings | None = None,
    holder: ModelHolder | None = None,
) -> FastAPI:
    """The API over cfg's registry. A given holder is used as is (tests, benchmarks)."""
    cfg = cfg or config.load()
    settings = settings or ServeSettings.from_config(cfg.settings.serve)
    holder = holder or ModelHolder(RegistrySource(cfg), settings)
    metrics = Metrics()
    explaining = asyncio.Semaphore(EXPLAIN_SLOTS)
    batching = asyncio.Semaphore(BATCH_SLOTS)
    default_k = min(cfg.settings.train.k, settings.max_k)
    reload_text = (
        f"polling the registry every {settings.poll_seconds:g} s, and POST /admin/reload"
        if settings.poll_seconds > 0
        else "POST /admin/reload (polling off)"
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if holder.current is None:
            await run_in_threadpool(holder.refresh)
        # what start-up allocated (MLflow, pandas, the model) is never garbage: keep the
        # collector from walking it again in the middle of a request
        gc.collect()
        gc.freeze()
        holder.start_polling()
        yield
        holder.stop()

    app = FastAPI(
        title="RecoMart recommendations",
        version="1.0",
        description=(
            "Recommendations from the registry's `champion` model. New champions are picked up "
            f"without a restart: {reload_text}. Optional API key: header `{API_KEY_HEADER}`, "
            f"required when ${API_KEY_ENV} is set."
        ),
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.metrics = metrics
    app.add_middleware(Guard, settings=settings)  # inside the timing: refusals are counted
    app.add_middleware(_Timing, metrics=metrics)

    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)

    async def require_key(key: Annotated[str | None, Depends(key_header)]) -> None:
        if not key_ok(settings, key):  # the Guard refused it already; this documents it
            raise HTTPException(401, f"missing or wrong {API_KEY_HEADER} header")

    async def model() -> ServingModel:
        current = holder.current
        if current is None:
            raise HTTPException(503, f"no model loaded: {holder.not_ready_reason}")
        return current

    # async dependencies: FastAPI runs plain `def` ones in a worker thread, a hop per request
    Protected = [Depends(require_key)] if settings.api_key else []
    K = Annotated[
        int, Query(ge=1, le=settings.max_k, description=f"list length, 1..{settings.max_k}")
    ]
    Served = Annotated[ServingModel, Depends(model)]
    BatchRequest = schemas.batch_request_model(settings.max_k, settings.max_batch, default_k)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message = "; ".join(
            f"{' '.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in errors[:5]
        )
        detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
        return JSONResponse({"message": message, "detail": detail}, status_code=422)

    @app.get(
        "/recommendations/{user_id}",
        response_model=schemas.RecommendationsResponse,
        responses=PROBLEMS,
        dependencies=Protected,
        summary="a user's top k (cold-start list for unknown users)",
    )
    async def recommendations(
        served: Served,
        user_id: Annotated[str, Path(**ID_PATH)],
        k: K = default_k,
        exclude_known: Annotated[bool, Query(description=schemas.EXCLUDE_KNOWN)] = True,
        explain: bool = False,
    ) -> Response:
        if explain:  # explanations solve a small system per item: off the event loop, bounded
            if k > settings.max_explain_k:  # a validation error like any other (422)
                msg = f"explain=true allows k up to {settings.max_explain_k} (got {k})"
                raise RequestValidationError(
                    [{"type": "less_than_equal", "loc": ("query", "k"), "msg": msg}]
                )
            async with explaining:  # at most EXPLAIN_SLOTS at once: plain requests keep going
                out = await run_in_threadpool(served.recommend, user_id, k, exclude_known, True)
        else:
            out = served.recommend(user_id, k, exclude_known)
        out.update(k=k, exclude_known=exclude_known, model_version=served.info.version)
        return _json(out)

    @app.post(
        "/recommendations/batch",
        response_model=schemas.BatchResponse,
        responses={
            **PROBLEMS,
            400: {"model": schemas.Problem, "description": "the body is not readable JSON"},
            408: {"model": schemas.Problem, "description": "the body came too slowly"},
            413: {"model": schemas.Problem, "description": "the body is over max_body_bytes"},
        },
        dependencies=Protected,
        summary=f"top k for up to {settings.max_batch} users in one call",
    )
    async def batch(served: Served, body: BatchRequest) -> Response:  # type: ignore[valid-type]
        # up to max_batch lists, each a matrix product above precompute_max_users: off the
        # event loop (which keeps answering), at most BATCH_SLOTS at once
        async with batching:
            results = await run_in_threadpool(
                _recommend_all, served, body.user_ids, body.k, body.exclude_known
            )
        return _json(
            {
                "k": body.k,
                "exclude_known": body.exclude_known,
                "model_version": served.info.version,
                "results": results,
            }
        )

    @app.get(
        "/items/{item_id}/similar",
        response_model=schemas.SimilarResponse,
        responses={**PROBLEMS, 404: {"model": schemas.Problem, "description": "unknown item"}},
        dependencies=Protected,
        summary="the k items closest to an item (cosine of item factors)",
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
            "items": served.similar(item_id, k),
        }

    @app.get(
        "/model",
        response_model=schemas.ModelResponse,
        responses=PROBLEMS,
        dependencies=Protected,
        summary="the served model: registry version, training run, metrics, data cutoff",
    )
    async def model_info(served: Served) -> dict[str, Any]:
        info = served.info
        return {
            **asdict(info),
            "n_users": served.n_users,
            "n_items": served.n_items,
            "reload": reload_text,
        }

    @app.get(
        "/health",
        response_model=schemas.Health,
        responses={503: {"model": schemas.Health, "description": "no model loaded"}},
        summary="ready only when a model is loaded",
    )
    async def health() -> JSONResponse:
        current = holder.current
        if current is None:
            body = {"status": "not ready", "model_version": None, "reason": holder.not_ready_reason}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", "model_version": current.info.version})

    @app.get("/metrics", response_class=Response, summary="Prometheus text format")
    async def prometheus() -> Response:
        current = holder.current
        info = None
        if current is not None:
            i = current.info
            info = {"name": i.name, "version": i.version, "run_id": i.run_id or ""}
        return Response(metrics.render(info, holder.reloads), media_type=CONTENT_TYPE)

    @app.post(
        "/admin/reload",
        response_model=schemas.Reload,
        responses={
            401: PROBLEMS[401],
            403: {"model": schemas.Problem, "description": "not loopback and no API key set"},
        },
        dependencies=Protected,
        summary="check the registry for a new champion now (polling does it periodically)",
    )
    async def reload() -> dict[str, Any]:
        reloaded = await run_in_threadpool(holder.refresh)
        current = holder.current
        return {
            "reloaded": reloaded,
            "model_version": current.info.version if current else None,
            "reason": None if current else holder.not_ready_reason,
        }

    return app


def _recommend_all(
    served: ServingModel, user_ids: list[str], k: int, exclude_known: bool
) -> list[dict[str, Any]]:
    """Each user's top k, in the order of user_ids (in a worker thread)."""
    return [served.recommend(u, k, exclude_known) for u in user_ids]


def _json(body: dict[str, Any]) -> Response:
    """A JSON response serialised by orjson, skipping FastAPI's re-validation of the body on
    the hot paths (the declared response_model still documents it, and the schema fuzz test
    checks every response against it)."""
    return Response(orjson.dumps(body), media_type="application/json")


class _Timing:
    """ASGI middleware: count and time every HTTP request by route template."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], path, status, time.perf_counter() - started)
