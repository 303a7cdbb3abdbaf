"""POST /recommendations {"user_id", "n", "surface", "context_item_ids", filters, exclusions,
pins, boosts, diversity, ...}: a user's top n under the rule set's surface defaults and the
request's own rules (models_ml.rules); GET /recommendations/{user_id}?k=10&surface=...: the
shortcut (the surface's rules alone; explain=true adds each item's drivers); POST
/recommendations/batch {"user_ids": [...], "k": 10, "exclude_known": true}: up to max_batch
users in one call (the default surface's rules).

Without rules (an empty surface, the default) a list is the precomputed lookup; with rules the
user's scores over every item are computed and the rules applied (a few milliseconds at most).
A user (or session) with events since start (POST /events) always takes the rules path, their
events folded into their scores (serving.snapshot; the answer's fold_in says how); explain is
not given for such a list.

exclude_known=true leaves out what [train] repeatable_events excludes (the model's own rule,
models_ml.matrix.excluded_pairs); explain=true adds each item's drivers (and the repeat part of
its score when the model blends repeat scores), for k up to max_explain_k, EXPLAIN_SLOTS at a
time in worker threads; a batch is scored in a worker thread, BATCH_SLOTS at a time.
"""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from models_ml.rules import UnknownAttribute
from recomart_core.rulesets import Rules
from serving import schemas
from serving.dependencies import BatchSlots, ExplainSlots, Holder, Served, Settings
from serving.dependencies import Rules as RuleSetDep
from serving.fresh import FreshEvents
from serving.routes.common import (
    BODY_PROBLEMS,
    ID_PATH,
    PROBLEMS,
    SURFACE_QUERY,
    json_response,
    list_length,
    rules_for,
    unknown_attribute,
)
from serving.settings import ServeSettings
from serving.snapshot import ServingModel


def router(settings: ServeSettings, default_k: int) -> APIRouter:
    """The two routes, with settings' bounds in their schema: k 1..max_k (default default_k),
    batches of 1..max_batch users."""
    routes = APIRouter()
    K = list_length(settings.max_k)
    BatchRequest = schemas.batch_request_model(settings.max_k, settings.max_batch, default_k)
    RecommendRequest = schemas.recommend_request_model(settings.max_k, default_k)

    @routes.post(
        "/recommendations",
        response_model=schemas.RecommendationsResponse,
        responses=BODY_PROBLEMS,
        summary="a user's (or visitor's) top n under business rules: filters, exclusions,"
        " pins, boosts, diversity",
    )
    async def recommend_with_rules(
        served: Served,
        holder: Holder,
        rule_set: RuleSetDep,
        body: RecommendRequest,  # type: ignore[valid-type]
    ) -> Response:
        rules = rules_for(rule_set, body.surface, body)
        if body.context_item_ids:
            rules = rules.model_copy(
                update={"exclude_item_ids": [*rules.exclude_item_ids, *body.context_item_ids]}
            )
        who = body.user_id or body.session_id or ""
        out = answer(served, who, body.n, body.exclude_known, rules, holder.fresh)
        out.update(
            k=body.n,
            exclude_known=body.exclude_known,
            model_version=served.info.version,
            rule_set=rule_set.describe(body.surface),
        )
        return json_response(out)

    @routes.get(
        "/recommendations/{user_id}",
        response_model=schemas.RecommendationsResponse,
        responses=PROBLEMS,
        summary="a user's top k (cold-start list for unknown users)",
    )
    async def recommendations(
        served: Served,
        holder: Holder,
        serve: Settings,
        explaining: ExplainSlots,
        rule_set: RuleSetDep,
        user_id: Annotated[str, Path(**ID_PATH)],
        k: K = default_k,
        exclude_known: Annotated[bool, Query(description=schemas.EXCLUDE_KNOWN)] = True,
        explain: bool = False,
        surface: Annotated[str | None, SURFACE_QUERY] = None,
    ) -> Response:
        rules = rules_for(rule_set, surface)
        fresh = holder.fresh.get(user_id)
        if not rules.empty or fresh is not None:
            out = answer(served, user_id, k, exclude_known, rules, holder.fresh)
        elif explain:  # explanations solve a small system per item: off the event loop, bounded
            if k > serve.max_explain_k:  # a validation error like any other (422)
                msg = f"explain=true allows k up to {serve.max_explain_k} (got {k})"
                raise RequestValidationError(
                    [{"type": "less_than_equal", "loc": ("query", "k"), "msg": msg}]
                )
            async with explaining:  # at most EXPLAIN_SLOTS at once: plain requests keep going
                out = await run_in_threadpool(served.recommend, user_id, k, exclude_known, True)
        else:
            out = served.recommend(user_id, k, exclude_known)
        out.update(
            k=k,
            exclude_known=exclude_known,
            model_version=served.info.version,
            rule_set=rule_set.describe(surface),
        )
        return json_response(out)

    @routes.post(
        "/recommendations/batch",
        response_model=schemas.BatchResponse,
        responses=BODY_PROBLEMS,
        summary=f"top k for up to {settings.max_batch} users in one call",
    )
    async def batch(
        served: Served,
        holder: Holder,
        batching: BatchSlots,
        rule_set: RuleSetDep,
        body: BatchRequest,  # type: ignore[valid-type]
    ) -> Response:
        # up to max_batch lists, each a matrix product above precompute_max_users: off the
        # event loop (which keeps answering), at most BATCH_SLOTS at once
        rules = rule_set.surface(None)
        async with batching:
            results = await run_in_threadpool(
                recommend_all, served, body.user_ids, body.k, body.exclude_known, rules,
                holder.fresh,
            )  # fmt: skip
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
    served: ServingModel,
    user_ids: list[str],
    k: int,
    exclude_known: bool,
    rules: Rules,
    fresh: FreshEvents | None = None,
) -> list[dict[str, Any]]:
    """Each user's top k under rules, in the order of user_ids (in a worker thread)."""
    return [answer(served, u, k, exclude_known, rules, fresh) for u in user_ids]


def answer(
    served: ServingModel,
    user_id: str,
    k: int,
    exclude_known: bool,
    rules: Rules,
    fresh: FreshEvents | None = None,
) -> dict[str, Any]:
    """The model's list (no rules, no fresh events) or the rules engine's over the user's
    scores, their fresh events folded in; a filter on an attribute the catalog lacks is a
    422."""
    events = fresh.get(user_id) if fresh is not None else None
    if rules.empty and events is None:
        return served.recommend(user_id, k, exclude_known)
    try:
        return served.recommend_with_rules(
            user_id, k, rules, exclude_known, now=time.time(), fresh=events
        )
    except UnknownAttribute as exc:
        raise unknown_attribute(exc) from None
