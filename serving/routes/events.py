"""POST /events: what users and visitors did (view, add_to_cart, purchase, return), one event or a
list of up to max_batch. Each accepted event is queued for the spool (serving.spool: durable
JSON lines under [paths] events, for the warehouse's ingest) and added to the user's fresh
events (serving.fresh), which their next recommendations fold in (serving.snapshot). 202
{"accepted": n}; 422 for a bad event (none of the request's is accepted); 503 with Retry-After
when the spool's queue is full (none accepted: send them again). No model is needed: events are
accepted while none is loaded."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request

from serving import schemas
from serving.dependencies import Holder
from serving.routes.common import BODY_PROBLEMS
from serving.settings import ServeSettings
from serving.spool import SpoolFull

RETRY_SECONDS = "1"  # what a 503 asks a client to wait before sending the events again


def router(settings: ServeSettings) -> APIRouter:
    """The route, with max_batch in its schema."""
    routes = APIRouter()
    EventsRequest = schemas.events_request_model(settings.max_batch)

    @routes.post(
        "/events",
        status_code=202,
        response_model=schemas.EventsAccepted,
        responses={
            **BODY_PROBLEMS,  # 400, 408, 413: the body's; 401: the key
            503: {
                "model": schemas.Problem,
                "description": "the spool's queue is full: nothing accepted, retry",
            },
        },
        summary=f"record what users did (one event or up to {settings.max_batch}); their next"
        " lists reflect it",
    )
    async def events(
        request: Request,
        holder: Holder,
        body: Annotated[EventsRequest, Body()],  # type: ignore[valid-type]
    ) -> dict[str, Any]:
        batch = body if isinstance(body, list) else [body]
        received = datetime.now(UTC)
        received_text = received.isoformat()
        records = [
            {
                **event.model_dump(exclude={"timestamp"}),
                "timestamp": event.at(received).astimezone(UTC).isoformat(),
                "received_at": received_text,
            }
            for event in batch
        ]
        try:
            request.app.state.spool.put(records)
        except SpoolFull as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": RETRY_SECONDS}) from None
        for event in batch:
            holder.fresh.add(
                event.who, event.item_id, event.event_type, event.at(received).timestamp()
            )
        return {"accepted": len(batch)}

    return routes
