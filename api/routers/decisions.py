"""``POST /v1/decisions``: decide, record the signed entry, then answer (``api/decider.py``).

The answer is built only from the receipt of a committed audit entry. If the entry cannot be
committed the caller gets 503 and no decision.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from api.apikeys import Role
from api.deps import authenticate, documented, read_body, services_of
from api.errors import ApiError
from api.schemas import (
    DECISION_REQUEST_EXAMPLE,
    UNAUTHORIZED,
    DecisionResponse,
    error_examples,
)
from policy import Caller, DecisionRequest

router = APIRouter(prefix="/v1", tags=["decisions"])

_ERRORS = error_examples(
    (400, "malformed_json", "the request body is not valid JSON"),
    UNAUTHORIZED,
    (403, "forbidden", "an app key may decide only for its own app_id"),
    (413, "body_too_large", "the request body exceeds the limit"),
    (422, "invalid_request", "a field is unknown, missing or out of range; `fields` names it"),
    (503, "audit_unavailable", "the decision could not be recorded, so none is issued"),
)


@router.post(
    "/decisions",
    response_model=DecisionResponse,
    responses=_ERRORS,
    summary="Which routes may serve this workload? (recorded)",
    openapi_extra=documented(DecisionRequest, {"regulated summarisation": {"value": DECISION_REQUEST_EXAMPLE}}),
)
async def create_decision(http: Request) -> Response:
    """The body is a ``DecisionRequest``; an ``app`` key may decide only for its own app."""
    caller = await authenticate(http, Role.app)
    request = await read_body(http, DecisionRequest)
    services = services_of(http)
    if request.app_id != caller.app_id:
        raise ApiError(403, "forbidden", f"this key belongs to app {caller.app_id!r}; it may not decide for {request.app_id!r}")
    who = Caller(key_id=caller.key_id, role=caller.role.value)
    decision = await services.decider.decide(request, caller=who)  # api/decider.py
    # Already validated: serialise directly instead of through response_model again.
    return Response(orjson.dumps(decision), media_type="application/json")
