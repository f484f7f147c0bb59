"""``POST /v1/decisions``: decide, record the signed entry, then answer (``api/decider.py``).

The answer is built only from the receipt of a committed audit entry. If the entry cannot be
committed the caller gets 503 and no decision.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.apikeys import Role
from api.deps import authenticate, documented, read_body, services_of
from api.gateway_calls import app_of, caller_of
from api.schemas import (
    DECISION_REQUEST_EXAMPLE,
    UNAUTHORIZED,
    DecisionResponse,
    error_examples,
)
from policy import DecisionRequest

router = APIRouter(prefix="/v1", tags=["decisions"])

_ERRORS = error_examples(
    (400, "malformed_json", "the request body is not valid JSON"),
    UNAUTHORIZED,
    (403, "forbidden", "an app key may decide only for its own app_id; a gateway key only for the app its "
                       "caller's identities map to (gateways.yaml), among the apps listed with the key"),
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
    """The body is a ``DecisionRequest``. An ``app`` key may decide only for its own app. A
    ``gateway`` key sends ``context.gateway`` with the caller's ``team`` or ``key_alias``: the app
    is the one they map to in gateways.yaml (``app_id`` must agree), among the key's apps."""
    return Response(await decide(http), media_type="application/json")


async def decide(http: Request) -> bytes:
    """The endpoint itself, shared by the route above and its fast path (``api/fast_path.py``):
    authenticate, read the body, check the app, then the decision's JSON once recorded. Raises
    what ``api.errors.response_for`` renders."""
    caller = await authenticate(http, Role.app, Role.gateway)
    request = await read_body(http, DecisionRequest)
    services = services_of(http)
    if caller.role is Role.gateway:
        reported = request.context.gateway
        _, gateway = app_of(services, caller, gateway=reported.name if reported else None,
                            team=reported.team if reported else None,
                            key_alias=reported.key_alias if reported else None, body_app=request.app_id)
        if gateway is not None and (reported is None or reported.name is None):  # record which gateway
            named = reported.model_copy(update={"name": gateway.name}) if reported else None
            request = request.model_copy(update={"context": request.context.model_copy(update={"gateway": named})})
    elif request.app_id != caller.app_id:
        app_of(services, caller, gateway=None, team=None, key_alias=None, body_app=request.app_id)
    # Built from the checked evaluation and the writer's receipt, not validated again through
    # response_model (which documents it): the bytes orjson writes of the decision, spliced
    # (api/decider.py; tests/api/test_decision_bytes.py pins both).
    return await services.decider.decide_json(request, caller=caller_of(caller))
