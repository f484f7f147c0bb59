"""The gateways' native contracts: Clearance's own check, LiteLLM's generic guardrail API and
Portkey's webhook guardrail, all under ``/v1/gateways/{gateway}/``.

Every check is a recorded decision for the app the caller's identities map to (gateways.yaml)
and a judgement of the route, or alias, about to be called (``api/gateway_calls.py``).

The two foreign contracts answer every refusal **in the body, with HTTP 200**: a bad key, an
unmapped identity, an unknown profile, an audit trail that cannot record — all are
``{"action": "BLOCKED", …}`` (LiteLLM) or ``{"verdict": false, …}`` (Portkey). An error status
would be read by the gateway according to its own error settings, and both can be set to let
the call through (LiteLLM ``fail_on_error: false`` / ``unreachable_fallback: fail_open``;
Portkey ``failOnError: false``); an answer in the body is obeyed whatever they say. Only an
unreachable Clearance is left to the gateway's settings, which the shipped configurations set
to fail closed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from api.apikeys import KeyStoreUnavailable, Principal, Role
from api.deps import authenticate, authenticate_token, documented, read_body, services_of
from api.errors import ApiError
from api.gateway_calls import CheckResult, check_call
from api.schemas import UNAUTHORIZED, error_examples
from audit import AuditEntryInvalid, AuditUnavailable
from policy.catalog import Identifier
from policy.errors import EvaluationError, UnknownApp
from policy.gateways import GatewayName
from policy.profile import ProfileViolation
from policy.strict_json import DuplicateKey
from policy.workload import ContextText, GatewayContext, RequestContext

router = APIRouter(prefix="/v1/gateways", tags=["gateways"])
log = logging.getLogger("clearance.gateways")

GatewayPath = Annotated[Identifier, Field(description="the gateway's name in gateways.yaml")]


# -- Clearance's own check (the LiteLLM guardrail class calls it on every attempt) -------------


class CheckRequest(BaseModel):
    """A gateway's question: may the caller (``team``/``key_alias``) call ``route`` now?"""

    model_config = ConfigDict(extra="forbid", frozen=True)
    team: ContextText | None = None
    key_alias: ContextText | None = None
    workload_profile: Identifier | None = Field(None, description="default: the app's default_workload")
    route: GatewayName | None = Field(
        None, description="the gateway's name for the deployment about to be called (gateways.yaml routes), "
                          "or an alias")
    alias_routes: list[GatewayName] | None = Field(
        None, max_length=100, description="when `route` is an alias: the routes the gateway may serve it by")
    candidates: dict[GatewayName, list[GatewayName] | None] = Field(
        default_factory=dict, max_length=200,
        description="what the caller may call instead (alias -> its routes, or route -> null): the best-ranked "
                    "cleared one is proposed as `substitute`")
    context: RequestContext = RequestContext()


class CheckOut(BaseModel):
    decision_id: str
    app_id: str
    workload_profile: str
    allowed: bool = Field(description="the route (or alias) is cleared; without a route: the outcome is allow")
    route: dict[str, Any] | None
    substitute: dict[str, Any] | None = Field(description="the best-ranked candidate whose every route is cleared, "
                                                     "when the route is not cleared")
    candidates: dict[str, dict[str, Any]] = Field(description="each candidate judged: cleared when every route "
                                                              "behind it is; rank: its best cleared route's")
    decision: dict[str, Any]


CHECK_EXAMPLE = {"team": "claims-platform", "route": "hosted_vllm/gemma-4-31b",
                 "context": {"gateway": {"requested_model": "safe", "call_id": "c-81"}}}


@router.post(
    "/{gateway}/check",
    response_model=CheckOut,
    responses=error_examples(
        UNAUTHORIZED,
        (403, "forbidden", "not a gateway key, or the identities map to no app of the key"),
        (422, "outside_profile", "the app has no such workload profile"),
        (503, "audit_unavailable", "the decision could not be recorded, so none is issued"),
    ),
    summary="A gateway's check of the route it is about to call (recorded)",
    openapi_extra=documented(CheckRequest, {"one deployment": {"value": CHECK_EXAMPLE}}),
)
async def check(http: Request, gateway: GatewayPath) -> dict[str, Any]:
    principal = await authenticate(http, Role.gateway)
    body = await read_body(http, CheckRequest)
    result = await check_call(services_of(http), principal, gateway=gateway, team=body.team,
                              key_alias=body.key_alias, workload_profile=body.workload_profile,
                              route=body.route, alias_routes=body.alias_routes, candidates=body.candidates,
                              context=body.context)
    return result.to_dict()


# -- answers in the body, whatever went wrong ---------------------------------------------------


async def _refusal_of(http: Request, act: Callable[[Principal], Awaitable[dict[str, Any]]],
                      refuse: Callable[[str, dict[str, Any]], dict[str, Any]], token: str | None) -> dict[str, Any]:
    """``act`` for the gateway key ``token``; every refusal or failure becomes ``refuse(reason,
    error)``, so the answer always carries the gateway's verdict member."""
    try:
        principal = await authenticate_token(http, token, Role.gateway)
        return await act(principal)
    except ApiError as exc:
        return refuse(exc.message, {"status": exc.status, "code": exc.code, "message": exc.message})
    except RequestValidationError as exc:
        fields = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors()]
        return refuse("the request does not match the contract: " + "; ".join(fields),
                      {"status": 422, "code": "invalid_request", "message": "; ".join(fields)})
    except (ProfileViolation, UnknownApp, DuplicateKey) as exc:
        return refuse(str(exc), {"status": 422, "code": "invalid_request", "message": str(exc)})
    except (AuditUnavailable, AuditEntryInvalid, EvaluationError, KeyStoreUnavailable) as exc:
        log.error("gateway check failed closed: %s", exc)
        return refuse(f"Clearance could not decide and record this call ({type(exc).__name__}), so it is "
                      "not cleared", {"status": 503, "code": "unavailable", "message": str(exc)})


def _codes(result: CheckResult) -> str:
    if result.route is None:
        return "no route is cleared"
    return ", ".join(result.route.codes()) or "not cleared"


# -- LiteLLM's generic guardrail API ------------------------------------------------------------


class LiteLLMRequestData(BaseModel):
    model_config = ConfigDict(extra="allow")
    user_api_key_alias: str | None = None
    user_api_key_team_alias: str | None = None
    user_api_key_team_id: str | None = None


class LiteLLMGuardrailRequest(BaseModel):
    """LiteLLM's ``GenericGuardrailAPIRequest`` (members Clearance does not read are accepted)."""

    model_config = ConfigDict(extra="allow")
    input_type: str | None = None
    litellm_call_id: str | None = None
    litellm_trace_id: str | None = None
    model: str | None = None
    request_data: LiteLLMRequestData = LiteLLMRequestData()
    additional_provider_specific_params: dict[str, Any] | None = None


def _blocked(reason: str, error: dict[str, Any]) -> dict[str, Any]:
    return {"action": "BLOCKED", "blocked_reason": f"Clearance: {reason}", "error": error}


@router.post(
    "/{gateway}/litellm/beta/litellm_basic_guardrail_api",
    summary="LiteLLM's generic guardrail API: is the model the client asked for cleared? (recorded)",
    description="Configure LiteLLM with `guardrail: generic_guardrail_api`, `api_base: "
                "<clearance>/v1/gateways/<gateway>/litellm` and `api_key: <gateway key>` (sent as `x-api-key`). "
                "Answers `{\"action\": \"NONE\"}` when the model (an alias: every route behind it) is cleared, "
                "else `{\"action\": \"BLOCKED\", \"blocked_reason\": \"Clearance: …reason codes…\"}`; every refusal "
                "and failure is a BLOCKED answer with HTTP 200, never a response without `action`.",
    openapi_extra=documented(LiteLLMGuardrailRequest, {"pre-call": {"value": {
        "input_type": "request", "litellm_call_id": "c-81", "model": "safe", "texts": ["hello"],
        "request_data": {"user_api_key_team_alias": "claims-platform"}}}}),
)
async def litellm_generic(http: Request, gateway: GatewayPath) -> dict[str, Any]:
    token = http.headers.get("x-api-key")

    async def act(principal: Principal) -> dict[str, Any]:
        body = await read_body(http, LiteLLMGuardrailRequest)
        if body.input_type == "response":
            return {"action": "NONE"}  # the call is made; its route was checked before it
        data = body.request_data
        team = data.user_api_key_team_alias or data.user_api_key_team_id
        params = body.additional_provider_specific_params or {}
        profile = params.get("workload_profile") if isinstance(params.get("workload_profile"), str) else None
        if body.model is None:
            raise ApiError(422, "invalid_request", "the guardrail request names no model")
        context = RequestContext(trace_id=_text(body.litellm_trace_id), gateway=GatewayContext(
            requested_model=_text(body.model), call_id=_text(body.litellm_call_id)))
        result = await check_call(services_of(http), principal, gateway=gateway, team=_text(team),
                                  key_alias=_text(data.user_api_key_alias), workload_profile=profile,
                                  route=body.model, candidates={}, context=context)
        if result.allowed:
            return {"action": "NONE", "decision_id": result.decision["decision_id"]}
        return {"action": "BLOCKED", "decision_id": result.decision["decision_id"],
                "blocked_reason": f"Clearance: {body.model} is not cleared for app {result.app_id} "
                                  f"({_codes(result)}); decision {result.decision['decision_id']}"}

    return await _refusal_of(http, act, _blocked, token)


def _text(value: str | None) -> str | None:
    """A gateway's value as a context member (at most 200 printable characters), or None."""
    if value is None:
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable())[:200]
    return cleaned or None


# -- Portkey's webhook guardrail ----------------------------------------------------------------


class PortkeyRequestPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    json_: dict[str, Any] | None = Field(None, alias="json")
    isStreamingRequest: bool | None = None


class PortkeyWebhookRequest(BaseModel):
    """Portkey's webhook guardrail body (``default.webhook``); other members are accepted."""

    model_config = ConfigDict(extra="allow")
    request: PortkeyRequestPart = PortkeyRequestPart()
    provider: str | None = None
    requestType: str | None = None
    eventType: str | None = None
    metadata: dict[str, Any] | None = None


def _verdict_false(reason: str, error: dict[str, Any]) -> dict[str, Any]:
    return {"verdict": False, "reason": f"Clearance: {reason}", "error": error}


@router.post(
    "/{gateway}/portkey/webhook",
    summary="Portkey's webhook guardrail: is the provider model cleared? (recorded)",
    description="Configure a `before_request_hooks` guardrail with `deny: true` and the check "
                "`default.webhook` (`webhookURL: <clearance>/v1/gateways/<gateway>/portkey/webhook`, "
                "`headers: {Authorization: Bearer <gateway key>}`, `failOnError: true`). The route is "
                "`<provider>/<model>`; the caller's identities are the request metadata's `team` and "
                "`key_alias`. Answers `{\"verdict\": true}`; for an uncleared model with a cleared substitute "
                "of the same provider, `{\"verdict\": true, \"transformedData\": {\"request\": {\"json\": …}}}` "
                "with the model replaced; else `{\"verdict\": false}`. Every refusal and failure is "
                "`verdict: false` with HTTP 200.",
    openapi_extra=documented(PortkeyWebhookRequest, {"before request": {"value": {
        "request": {"json": {"model": "gemma-4-31b", "messages": []}}, "provider": "openai",
        "requestType": "chatComplete", "eventType": "beforeRequestHook",
        "metadata": {"team": "claims-platform"}}}}),
)
async def portkey_webhook(http: Request, gateway: GatewayPath, substitute: bool = True) -> dict[str, Any]:
    scheme, _, token = (http.headers.get("authorization") or "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None

    async def act(principal: Principal) -> dict[str, Any]:
        body = await read_body(http, PortkeyWebhookRequest)
        if body.eventType == "afterRequestHook":
            return {"verdict": True}  # the call is made; its route was checked before it
        payload = body.request.json_ or {}
        model = payload.get("model")
        if not isinstance(model, str) or not body.provider:
            raise ApiError(422, "invalid_request", "the webhook request names no provider and model")
        meta = body.metadata or {}
        team = meta.get("team") if isinstance(meta.get("team"), str) else None
        alias = meta.get("key_alias") if isinstance(meta.get("key_alias"), str) else None
        profile = meta.get("workload_profile") if isinstance(meta.get("workload_profile"), str) else None
        route = f"{body.provider}/{model}"
        services = services_of(http)
        found = services.policy.current.bundle.gateways.get(gateway)
        prefix = f"{body.provider}/"
        # A substitute must be served by the same provider: only the model member can change.
        candidates: dict[str, list[str] | None] = {
            name: None for name in (found.routes if found else {}) if name.startswith(prefix)} if substitute else {}
        context = RequestContext(trace_id=_text(meta.get("trace_id") if isinstance(meta.get("trace_id"), str)
                                                else None),
                                 gateway=GatewayContext(requested_model=_text(model)))
        result = await check_call(services, principal, gateway=gateway, team=_text(team), key_alias=_text(alias),
                                  workload_profile=profile, route=route, candidates=candidates, context=context)
        decision_id = result.decision["decision_id"]
        if result.allowed:
            return {"verdict": True, "decision_id": decision_id}
        if result.substitute is not None:
            swapped = {**payload, "model": result.substitute.name.removeprefix(prefix)}
            return {"verdict": True, "decision_id": decision_id, "substitute": result.substitute.to_dict(),
                    "transformedData": {"request": {"json": swapped}}}
        return {"verdict": False, "decision_id": decision_id,
                "reason": f"Clearance: {route} is not cleared for app {result.app_id} ({_codes(result)}); "
                          f"decision {decision_id}"}

    return await _refusal_of(http, act, _verdict_false, bearer)
