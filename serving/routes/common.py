"""Declarations the routes share: the id path parameter, the documented problem answers, the
list length query parameter, and the orjson response of the hot paths."""

from typing import Annotated, Any

import orjson
from fastapi import Query, Response
from fastapi.exceptions import RequestValidationError

from models_ml.rules import UnknownAttribute
from recomart_core.rulesets import Rules, RuleSet
from serving import schemas
from serving.settings import API_KEY_HEADER, ServeSettings

ID_PATH = {
    **schemas.ID_RULES,
    "description": f"the shop's id: 1..{schemas.ID_MAX_LENGTH} characters, no control characters",
}
PROBLEMS = {
    401: {"model": schemas.Problem, "description": f"{API_KEY_HEADER} missing or wrong"},
    503: {"model": schemas.Problem, "description": "no model loaded yet: run `make train`"},
}
# the routes that read a body (serving.guard refuses it before the route: 408, 413)
BODY_PROBLEMS = {
    **PROBLEMS,
    400: {"model": schemas.Problem, "description": "the body is not readable JSON"},
    408: {"model": schemas.Problem, "description": "the body came too slowly"},
    413: {"model": schemas.Problem, "description": "the body is over max_body_bytes"},
}


def list_length(max_k: int) -> Any:
    """The `k` query parameter's type: 1..max_k, documented as such."""
    return Annotated[int, Query(ge=1, le=max_k, description=f"list length, 1..{max_k}")]


def reload_text(settings: ServeSettings) -> str:
    """How a new champion is picked up (the API's description and GET /model say it)."""
    if settings.poll_seconds > 0:
        return f"polling the registry every {settings.poll_seconds:g} s, and POST /admin/reload"
    return "POST /admin/reload (polling off)"


def json_response(body: dict[str, Any]) -> Response:
    """A JSON response serialised by orjson, skipping FastAPI's re-validation of the body on
    the hot paths (the declared response_model still documents it, and the schema fuzz test
    checks every response against it)."""
    return Response(orjson.dumps(body), media_type="application/json")


SURFACE_QUERY = Query(
    description="the rule set surface whose rules apply (home, product, basket, email, ...;"
    " default: the rule set's default_surface)"
)


def rules_for(rule_set: RuleSet, surface: str | None, own: Rules | None = None) -> Rules:
    """The surface's rules (own's explicitly set fields over them); an unknown surface is a
    validation error (422) naming the surfaces there are."""
    try:
        base = rule_set.surface(surface)
    except KeyError as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("surface",), "msg": exc.args[0]}]
        ) from None
    return base if own is None else own.over(base)


def unknown_attribute(exc: UnknownAttribute) -> RequestValidationError:
    """A filter on an attribute the catalog lacks, as a 422."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("filters", "attributes"), "msg": str(exc)}]
    )
