"""``POST /v1/decisions``: decide, record the signed entry, then answer.

The durability contract is enforced here: the response is built only from the receipt of a
committed audit entry. If the entry cannot be committed the caller gets 503 and no decision.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.apikeys import Role
from api.deps import authenticate, documented, read_body, services_of
from api.errors import ApiError
from api.schemas import (
    DECISION_REQUEST_EXAMPLE,
    FORBIDDEN,
    UNAUTHORIZED,
    DecisionResponse,
    error_examples,
)
from api.shadow import shadow_verdict
from audit import AuditUnavailable
from audit.canonical import Canonical
from policy import Caller, DecisionRequest
from policy.decision import new_decision_id
from policy.gitinfo import GitInfo

router = APIRouter(prefix="/v1", tags=["decisions"])

_ERRORS = error_examples(
    (400, "malformed_json", "the request body is not valid JSON"),
    UNAUTHORIZED,
    (403, "forbidden", "an app key may decide only for its own app_id"),
    (413, "body_too_large", "the request body exceeds the limit"),
    (422, "invalid_request", "a field is unknown, missing or out of range; `fields` names it"),
    (503, "audit_unavailable", "the decision could not be recorded, so none is issued"),
)


def audit_fields(
    *, kind: str, policy_input: dict[str, Any] | Canonical, result: dict[str, Any] | Canonical, app_id: str | None,
    caller_key_id: str | None, policy_revision: str, engine: str, context: dict[str, Any] | None = None,
    policy_git: GitInfo | None = None, shadow: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The caller-supplied part of an audit entry body (the writer adds seq, time, key, link).

    ``policy_git``: the git commit of the policy directory and whether it was dirty (null
    outside a work tree). ``shadow``: the shadow policy's verdict, only in shadow mode.
    ``input`` and ``result`` may come canonicalised already (``api.recording``).
    """
    extra: dict[str, Any] = {"shadow": shadow} if shadow is not None else {}
    summary = result.value if isinstance(result, Canonical) else result
    return extra | {
        "kind": kind,
        "decision_id": summary["decision_id"],
        "app_id": app_id,
        "caller_key_id": caller_key_id,
        "input": policy_input,
        "result": result,
        "outcome": summary["outcome"],
        "policy_revision": policy_revision,
        "engine": engine,
        "context": context or {},
        "policy_git": policy_git.to_dict() if policy_git is not None else None,
    }


@router.post(
    "/decisions",
    response_model=DecisionResponse,
    responses=_ERRORS,
    summary="Which routes may serve this workload? (recorded)",
    openapi_extra=documented(DecisionRequest, {"regulated summarisation": {"value": DECISION_REQUEST_EXAMPLE}}),
)
async def create_decision(http: Request) -> Response:
    """The body is a ``DecisionRequest``; an ``app`` key may decide only for its own app."""
    caller = authenticate(http, Role.app)
    request = await read_body(http, DecisionRequest)
    services = services_of(http)
    if request.app_id != caller.app_id:
        raise ApiError(403, "forbidden", f"this key belongs to app {caller.app_id!r}; it may not decide for {request.app_id!r}")
    started = time.perf_counter()
    policy = services.policy.current
    who = Caller(key_id=caller.key_id, role=caller.role.value)
    policy_input = policy.input_for(request, who)
    if policy.engine.name == "regorus":
        prepared = services.encoder.prepare(policy, policy_input)  # in-process, well under 1 ms
    else:  # a network round trip (OPA): keep the event loop free while it waits
        prepared = await run_in_threadpool(services.encoder.prepare, policy, policy_input)
    result = services.encoder.result(prepared, decision_id=new_decision_id(), policy_revision=policy.revision)
    shadow = (shadow_verdict(services, request, caller=who, result=result.value)
              if services.shadow is not None else None)
    fields = audit_fields(
        kind="decision", policy_input=prepared.input, result=result, app_id=request.app_id,
        caller_key_id=caller.key_id, policy_revision=policy.revision, engine=policy.engine.name,
        context=request.context.model_dump(mode="json"), policy_git=policy.bundle.git, shadow=shadow,
    )
    try:
        receipt = await services.writer.append_async(fields)
    except AuditUnavailable:
        services.metrics.audit_failures.inc()
        raise
    services.metrics.decisions.labels(outcome=prepared.outcome).inc()
    services.metrics.decision_seconds.observe(time.perf_counter() - started)
    # Already validated: serialise directly instead of through response_model again.
    return Response(orjson.dumps({**result.value, "audit": receipt.to_dict()}), media_type="application/json")
