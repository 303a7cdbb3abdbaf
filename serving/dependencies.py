"""What the routes share, as FastAPI dependencies over the app's state (serving.app.create_app
sets it: app.state.holder, settings, metrics, explaining, batching):

- Holder: the ModelHolder (its current model, its reload);
- Served: the model serving this request, read once from the holder (503 while there is none,
  telling to run `make train`);
- Settings: the [serve] settings the app was built with; AppMetrics: its Prometheus counters;
- Rules: the rule set (models_ml.rules.RuleSet) read from [serve] rules at start;
- ExplainSlots, BatchSlots: the semaphores bounding explanations and batches in worker threads;
- require_key: the API-key check (401), on every data route when a key is set (the Guard
  refused a wrong key already: this documents it in the OpenAPI schema).

All are async: FastAPI runs plain `def` dependencies in a worker thread, a hop per request.
"""

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from recomart_core.rulesets import RuleSet
from serving.guard import key_ok
from serving.holder import ModelHolder
from serving.metrics import Metrics
from serving.settings import API_KEY_HEADER, ServeSettings
from serving.snapshot import ServingModel


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_rule_set(request: Request) -> RuleSet:
    return request.app.state.rule_set


async def explain_slots(request: Request) -> asyncio.Semaphore:
    return request.app.state.explaining


async def batch_slots(request: Request) -> asyncio.Semaphore:
    return request.app.state.batching


async def served_model(request: Request) -> ServingModel:
    """The holder's current model, read once: the request uses it to the end, whatever swap
    happens meanwhile; 503 when no model is loaded."""
    holder: ModelHolder = request.app.state.holder
    current = holder.current
    if current is None:
        raise HTTPException(503, f"no model loaded: {holder.not_ready_reason}")
    return current


key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


async def require_key(request: Request, key: Annotated[str | None, Depends(key_header)]) -> None:
    """401 unless the X-API-Key header holds the configured key (any request when none is)."""
    if not key_ok(request.app.state.settings, key):
        raise HTTPException(401, f"missing or wrong {API_KEY_HEADER} header")


Holder = Annotated[ModelHolder, Depends(get_holder)]
Served = Annotated[ServingModel, Depends(served_model)]
Settings = Annotated[ServeSettings, Depends(get_settings)]
AppMetrics = Annotated[Metrics, Depends(get_metrics)]
Rules = Annotated[RuleSet, Depends(get_rule_set)]
ExplainSlots = Annotated[asyncio.Semaphore, Depends(explain_slots)]
BatchSlots = Annotated[asyncio.Semaphore, Depends(batch_slots)]


def protection(settings: ServeSettings) -> list:
    """The dependencies of every data route: the key check when a key is set, else none."""
    return [Depends(require_key)] if settings.api_key else []
