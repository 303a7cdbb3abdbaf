"""The FastAPI application: create_app(cfg) -> app. Routes read holder.current once per request.

POST /recommendations                  {"user_id", "n", "surface", filters, pins, ...}: rules
GET  /recommendations/{user_id}?k=10&exclude_known=true&explain=false&surface=home
POST /recommendations/batch            {"user_ids": [...], "k": 10, "exclude_known": true}
POST /events                           {"user_id" | "session_id", "item_id", "event_type", ...}
                                       or a list: spooled to disk, folded into the next lists

exclude_known=true leaves out what [train] repeatable_events excludes (the model's own rule,
models_ml.matrix.excluded_pairs): every item the user had, or with repeatable event types the
items the user had with another type or returned; explain=true adds the repeat part of a
score when the model blends repeat scores (repeat_weight > 0).
GET  /items/{item_id}/similar?k=10&surface=product    PATCH /items/{item_id} {"in_stock": false}
GET  /model    GET /health    GET /metrics    POST /admin/reload    GET /docs (OpenAPI)

Bad input answers 422 (FastAPI's validation detail plus a one-line `message`), an unknown item
404, no model yet 503 telling to run `make train`, a missing or wrong API key 401 (only when
$RECOMART_API_KEY is set; /health, /metrics and the docs stay open). Limits before any route
(serving.guard): bodies over [serve] max_body_bytes 413, not all in within
body_timeout_seconds 408, more than limit_concurrency requests in flight 503 (never /health),
admin routes loopback-only without a key (403); explain=true takes k up to max_explain_k,
EXPLAIN_SLOTS at a time; a batch is scored in a worker thread, BATCH_SLOTS at a time. The
connections themselves are bounded before a request exists (serving.connections).

The routes live in serving.routes (one router per concern), what they share in
serving.dependencies (read from app.state); this module builds the app, its middleware and
its error answers, and includes the routers.
"""

import asyncio
import gc
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from recomart_core import config
from recomart_core.rulesets import RuleSet, load_rule_set
from serving.dependencies import protection
from serving.guard import Guard
from serving.holder import ModelHolder
from serving.loader import RegistrySource
from serving.metrics import Metrics
from serving.routes import admin, events, health, model, recommendations, similar
from serving.routes.common import reload_text
from serving.settings import API_KEY_ENV, API_KEY_HEADER, ServeSettings
from serving.spool import Spool

EXPLAIN_SLOTS = 2  # explanations computed at once (each in a worker thread)
BATCH_SLOTS = 2  # batch requests scored at once (each in a worker thread)


def create_app(
    cfg: config.Config,
    settings: ServeSettings | None = None,
    holder: ModelHolder | None = None,
    rule_set: RuleSet | None = None,
    spool: Spool | None = None,
) -> FastAPI:
    """The API over cfg's registry: [train] k is the default list length, settings (default:
    cfg's [serve] and the environment's API key) its bounds. A given holder is used as is
    (tests, benchmarks); otherwise one over cfg's registry, loaded at start-up. POST /events
    writes to spool (default: one in cfg's [paths] events), closed when the app stops."""
    settings = settings or ServeSettings.from_config(cfg.settings.serve)
    holder = holder or ModelHolder(RegistrySource(cfg), settings)
    # the shop's rules (models_ml.rules): [serve] rules under the home, read once at start
    rule_set = rule_set or load_rule_set(cfg.paths.home / settings.rules)
    default_k = min(cfg.settings.train.k, settings.max_k)
    spool = spool or Spool(
        cfg.paths.events, settings.events_queue, rotate_bytes=settings.events_rotate_bytes
    )
    metrics = Metrics()
    app = FastAPI(
        title="RecoMart recommendations",
        version="2.0",  # 2.0: strategy als / popularity -> model, with family beside it
        description=(
            "Recommendations from the registry's `champion` model. New champions are picked up "
            f"without a restart: {reload_text(settings)}. Optional API key: header "
            f"`{API_KEY_HEADER}`, required when ${API_KEY_ENV} is set."
        ),
        lifespan=lifespan,
    )
    # what serving.dependencies hands to the routes
    app.state.settings = settings
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.rule_set = rule_set
    app.state.spool = spool
    app.state.explaining = asyncio.Semaphore(EXPLAIN_SLOTS)
    app.state.batching = asyncio.Semaphore(BATCH_SLOTS)

    app.add_middleware(Guard, settings=settings)  # inside the timing: refusals are counted
    app.add_middleware(_Timing, metrics=metrics)
    app.add_exception_handler(RequestValidationError, invalid)

    protected = protection(settings)  # the API key on every data route, when one is set
    app.include_router(recommendations.router(settings, default_k), dependencies=protected)
    app.include_router(similar.router(settings, default_k), dependencies=protected)
    app.include_router(events.router(settings), dependencies=protected)
    app.include_router(model.router, dependencies=protected)
    app.include_router(health.router)  # open
    app.include_router(admin.router, dependencies=protected)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Load the champion (unless the holder has a model already), then poll for new ones until
    the app stops; then close the event spool (its last file renamed .jsonl)."""
    holder: ModelHolder = app.state.holder
    if holder.current is None:
        await run_in_threadpool(holder.refresh)
    # what start-up allocated (MLflow, pandas, the model) is never garbage: keep the
    # collector from walking it again in the middle of a request
    gc.collect()
    gc.freeze()
    holder.start_polling()
    yield
    holder.stop()
    await run_in_threadpool(app.state.spool.close)


async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with FastAPI's detail (type, loc, msg of each error) and a one-line `message`."""
    errors = exc.errors()
    message = "; ".join(
        f"{' '.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
        for e in errors[:5]
    )
    detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
    return JSONResponse({"message": message, "detail": detail}, status_code=422)


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
