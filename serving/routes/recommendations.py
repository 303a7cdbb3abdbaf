"""GET /recommendations/{user_id}?k=10&exclude_known=true&explain=false: a user's top k
(the cold-start list for unknown users); POST /recommendations/batch {"user_ids": [...], "k":
10, "exclude_known": true}: the same for up to max_batch users in one call.

exclude_known=true leaves out what [train] repeatable_events excludes (the model's own rule,
models_ml.matrix.excluded_pairs); explain=true adds each item's drivers (and the repeat part of
its score when the model blends repeat scores), for k up to max_explain_k, EXPLAIN_SLOTS at a
time in worker threads; a batch is scored in a worker thread, BATCH_SLOTS at a time.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from serving import schemas
from serving.dependencies import BatchSlots, ExplainSlots, Served, Settings
from serving.routes.common import ID_PATH, PROBLEMS, json_response, list_length
from serving.settings import ServeSettings
from serving.snapshot import ServingModel

BATCH_PROBLEMS = {
    **PROBLEMS,
    400: {"model": schemas.Problem, "description": "the body is not readable JSON"},
    408: {"model": schemas.Problem, "description": "the body came too slowly"},
    413: {"model": schemas.Problem, "description": "the body is over max_body_bytes"},
}


def router(settings: ServeSettings, default_k: int) -> APIRouter:
    """The two routes, with settings' bounds in their schema: k 1..max_k (default default_k),
    batches of 1..max_batch users."""
    routes = APIRouter()
    K = list_length(settings.max_k)
    BatchRequest = schemas.batch_request_model(settings.max_k, settings.max_batch, default_k)

    @routes.get(
        "/recommendations/{user_id}",
        response_model=schemas.RecommendationsResponse,
        responses=PROBLEMS,
        summary="a user's top k (cold-start list for unknown users)",
    )
    async def recommendations(
        served: Served,
        serve: Settings,
        explaining: ExplainSlots,
        user_id: Annotated[str, Path(**ID_PATH)],
        k: K = default_k,
        exclude_known: Annotated[bool, Query(description=schemas.EXCLUDE_KNOWN)] = True,
        explain: bool = False,
    ) -> Response:
        if explain:  # explanations solve a small system per item: off the event loop, bounded
            if k > serve.max_explain_k:  # a validation error like any other (422)
                msg = f"explain=true allows k up to {serve.max_explain_k} (got {k})"
                raise RequestValidationError(
                    [{"type": "less_than_equal", "loc": ("query", "k"), "msg": msg}]
                )
            async with explaining:  # at most EXPLAIN_SLOTS at once: plain requests keep going
                out = await run_in_threadpool(served.recommend, user_id, k, exclude_known, True)
        else:
            out = served.recommend(user_id, k, exclude_known)
        out.update(k=k, exclude_known=exclude_known, model_version=served.info.version)
        return json_response(out)

    @routes.post(
        "/recommendations/batch",
        response_model=schemas.BatchResponse,
        responses=BATCH_PROBLEMS,
        summary=f"top k for up to {settings.max_batch} users in one call",
    )
    async def batch(served: Served, batching: BatchSlots, body: BatchRequest) -> Response:  # type: ignore[valid-type]
        # up to max_batch lists, each a matrix product above precompute_max_users: off the
        # event loop (which keeps answering), at most BATCH_SLOTS at once
        async with batching:
            results = await run_in_threadpool(
                recommend_all, served, body.user_ids, body.k, body.exclude_known
            )
        return json_response(
            {
                "k": body.k,
                "exclude_known": body.exclude_known,
                "model_version": served.info.version,
                "results": results,
            }
        )

    return routes


def recommend_all(
    served: ServingModel, user_ids: list[str], k: int, exclude_known: bool
) -> list[dict[str, Any]]:
    """Each user's top k, in the order of user_ids (in a worker thread)."""
    return [served.recommend(u, k, exclude_known) for u in user_ids]
