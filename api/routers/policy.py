"""``/v1/policy``: what policy is active, and evaluation without recording (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from api.deps import Admin, CurrentPrincipal, ServicesDep
from api.schemas import (
    DECISION_REQUEST_EXAMPLE,
    FORBIDDEN,
    UNAUTHORIZED,
    ModelSummary,
    PolicyInfo,
    SimulationResponse,
    error_examples,
)
from policy import Caller, DecisionRequest, decide

router = APIRouter(prefix="/v1/policy", tags=["policy"])


@router.get("", response_model=PolicyInfo, responses=error_examples(UNAUTHORIZED),
            summary="The active policy: revision, modules, catalog summary")
async def get_policy(services: ServicesDep, _: CurrentPrincipal) -> PolicyInfo:
    policy = services.policy.current
    bundle = policy.bundle
    return PolicyInfo(
        revision=policy.revision,
        engine=policy.engine.name,
        directory=str(bundle.root),
        modules=sorted(bundle.modules),
        files=list(bundle.files),
        models=[
            ModelSummary(
                id=m.id, provenance=m.provenance.value, status=m.status.value,
                quality_tier=m.quality_tier.value, routes=[d.id for d in m.deployments],
            )
            for m in bundle.catalog.models
        ],
        apps=[a.id for a in bundle.catalog.apps],
        reason_codes=sorted(bundle.reasons.codes),
    )


@router.post(
    "/simulate",
    response_model=SimulationResponse,
    responses=error_examples(
        (400, "malformed_json", "the request body is not valid JSON"), UNAUTHORIZED, FORBIDDEN,
        (422, "invalid_request", "a field is unknown, missing or out of range; `fields` names it"),
    ),
    summary="Evaluate a request without recording it (admin)",
)
async def simulate(
    services: ServicesDep,
    admin: Admin,
    request: Annotated[DecisionRequest, Body(openapi_examples={"example": {"value": DECISION_REQUEST_EXAMPLE}})],
) -> dict[str, Any]:
    policy = services.policy.current
    _, decision = decide(policy, request, caller=Caller(key_id=admin.key_id, role=admin.role.value))
    result = decision.model_dump(mode="json")
    del result["decision_id"]
    return {"simulated": True, **result}
