"""``/v1/policy``: what policy is active, hot reload, and evaluation without recording (admin)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from api.apikeys import Role
from api.deps import Admin, CurrentPrincipal, ServicesDep, authenticate, documented, read_body, services_of
from api.errors import ApiError, FieldError
from api.reload import reload_policy
from api.schemas import (
    DECISION_REQUEST_EXAMPLE,
    FORBIDDEN,
    UNAUTHORIZED,
    GitState,
    ModelSummary,
    PolicyInfo,
    PolicySummary,
    ReloadResponse,
    ShadowInfo,
    SimulationResponse,
    error_examples,
)
from policy import Caller, DecisionRequest, GitInfo

router = APIRouter(prefix="/v1/policy", tags=["policy"])


@router.get("", response_model=PolicyInfo | PolicySummary, responses=error_examples(UNAUTHORIZED),
            summary="The active policy: revision, catalog summary, reason codes (any key); "
                    "directory, files, apps, shadow and process too (admin)")
async def get_policy(services: ServicesDep, caller: CurrentPrincipal) -> PolicyInfo | PolicySummary:
    policy = services.policy.current
    bundle = policy.bundle
    summary = PolicySummary(
        revision=policy.revision,
        engine=policy.engine.name,
        git=_git_state(bundle.git),
        models=[
            ModelSummary(
                id=m.id, provenance=m.provenance.value, status=m.status.value,
                quality_tier=m.quality_tier.value, routes=[d.id for d in m.deployments],
            )
            for m in bundle.catalog.models
        ],
        reason_codes=sorted(bundle.reasons.codes),
    )
    if caller.role is not Role.admin:  # the server's paths, other apps and its processes are not theirs
        return summary
    shadow = services.shadow.current if services.shadow is not None else None
    return PolicyInfo(
        **summary.model_dump(),
        directory=str(bundle.root),
        modules=sorted(bundle.modules),
        files=list(bundle.files),
        apps=[a.id for a in bundle.catalog.apps],
        shadow=ShadowInfo(revision=shadow.revision, directory=str(shadow.bundle.root),
                          git=_git_state(shadow.bundle.git)) if shadow is not None else None,
        pid=os.getpid(),
    )


def _git_state(git: GitInfo | None) -> GitState | None:
    return GitState(**git.to_dict()) if git is not None else None  # type: ignore[arg-type]


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses=error_examples(
        UNAUTHORIZED, FORBIDDEN,
        (422, "policy_refused", "the bundle on disk fails the check; `fields` lists each error as "
                                "file:line and the running bundle keeps serving"),
        (503, "audit_unavailable", "the reload could not be recorded, so nothing was swapped"),
    ),
    summary="Reload the bundle from disk (admin); refused, and recorded, if it fails the check",
)
async def reload(services: ServicesDep, admin: Admin) -> dict[str, Any]:
    """Checks the bundle in the policy directory and, if it is clean, swaps it in atomically.
    Every attempt is recorded in the audit chain (kind ``policy_reload``), once: the worker
    process that serves this request (see ``pid``) reloads, and the other workers follow what it
    swapped in within a second (``api/reload_broadcast.py``); SIGHUP to the server does the same."""
    result = await asyncio.to_thread(reload_policy, services, requested_by=admin.key_id,
                                     caller_key_id=admin.key_id)
    if not result.accepted:
        n = len(result.errors)
        raise ApiError(
            422, "policy_refused",
            f"the bundle in {result.directory} was refused ({n} error{'s' if n != 1 else ''}); revision "
            f"{result.revision} keeps serving (recorded as audit seq {result.receipt.seq})",
            fields=[FieldError(field=f"{e.file}:{e.line}" if e.line else e.file, reason=f"{e.code}: {e.message}")
                    for e in result.errors],
        )
    return {
        "outcome": result.outcome, "revision": result.revision, "previous_revision": result.previous_revision,
        "changed": result.changed, "directory": result.directory, "git": _git_state(result.git),
        "requested_by": result.requested_by, "pid": result.pid, "shadow": result.shadow,
        "audit": result.receipt.to_dict(),
    }


@router.post(
    "/simulate",
    response_model=SimulationResponse,
    responses=error_examples(
        (400, "malformed_json", "the request body is not valid JSON"), UNAUTHORIZED, FORBIDDEN,
        (422, "invalid_request", "a field is unknown, missing or out of range; `fields` names it"),
    ),
    summary="Evaluate a request without recording it (admin)",
    openapi_extra=documented(DecisionRequest, {"example": {"value": DECISION_REQUEST_EXAMPLE}}),
)
async def simulate(http: Request) -> Response:
    """The body is a ``DecisionRequest``; decided exactly as ``POST /v1/decisions`` decides it
    (same memoised path), but nothing is recorded."""
    admin = await authenticate(http, Role.admin)
    request = await read_body(http, DecisionRequest)
    simulated = await services_of(http).decider.simulate(
        request, caller=Caller(key_id=admin.key_id, role=admin.role.value))
    return Response(orjson.dumps(simulated), media_type="application/json")
