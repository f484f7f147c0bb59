"""``GET /v1/models``: the models cleared for the calling app, as an OpenAI-compatible list.

A listing is a decision like any other: it is evaluated for the app's default workload profile
(``default_workload`` in apps.yaml) or the one named by ``?workload_profile=``, recorded in the
audit trail before it is answered, and its ``decision_id`` is in the answer. What an SDK or a
gateway is shown as callable is as auditable as what a decision clears.
"""

from __future__ import annotations

import calendar
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.apikeys import Role
from api.deps import ServicesDep, authenticate
from api.gateway_calls import app_of, caller_of, default_profile
from api.schemas import UNAUTHORIZED, error_examples
from policy import DecisionRequest
from policy.catalog import Identifier
from policy.workload import ContextText, GatewayContext, RequestContext

router = APIRouter(prefix="/v1", tags=["gateways"])


class ClearedDeployment(BaseModel):
    deployment: str
    rank: int
    price_per_mtok: float
    obligations: list[str]


class ModelClearance(BaseModel):
    rank: int = Field(description="the best rank among the model's cleared routes (1 is the best)")
    provenance: str
    deployments: list[ClearedDeployment]
    gateway_names: list[str] = Field(
        default_factory=list, description="(gateway key) the gateway's names for the cleared routes")


class ModelOut(BaseModel):
    id: str
    object: str = "model"
    created: int = Field(description="the model version's release date (Unix time), 0 when unknown")
    owned_by: str
    clearance: ModelClearance


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelOut]
    decision_id: str = Field(description="the recorded decision this list is made from")
    app_id: str
    workload_profile: str
    policy_revision: str


@router.get(
    "/models",
    response_model=ModelList,
    responses=error_examples(
        UNAUTHORIZED,
        (403, "forbidden", "not an app or gateway key, or the caller's identities map to no app of the key"),
        (422, "outside_profile", "the app has no such workload profile (or no default_workload)"),
        (503, "audit_unavailable", "the listing could not be recorded, so none is answered"),
    ),
    summary="The models cleared for the calling app's default workload profile (OpenAI-compatible, recorded)",
)
async def list_models(
    http: Request,
    services: ServicesDep,
    workload_profile: Annotated[Identifier | None, Query(description="one of the app's workload profiles "
                                                                     "(default: its default_workload)")] = None,
    team: Annotated[ContextText | None, Query(description="(gateway key) the caller's team")] = None,
    key_alias: Annotated[ContextText | None, Query(description="(gateway key) the caller's key alias")] = None,
    gateway: Annotated[Identifier | None, Query(description="(gateway key not bound to one) the gateway")] = None,
) -> dict[str, Any]:
    principal = await authenticate(http, Role.app, Role.gateway)
    app_id, found = app_of(services, principal, gateway=gateway, team=team, key_alias=key_alias)
    profile = workload_profile or default_profile(services, app_id)
    context = RequestContext(gateway=GatewayContext(name=found.name, team=team, key_alias=key_alias)
                             if found is not None else None)
    decision = await services.decider.decide(
        DecisionRequest(app_id=app_id, workload_profile=profile, context=context), caller=caller_of(principal))
    catalog = services.policy.current.bundle.catalog
    names: dict[tuple[str, str], list[str]] = {}
    if found is not None:
        for name, ref in found.routes.items():
            names.setdefault((ref.model, ref.deployment), []).append(name)
    listed: dict[str, dict[str, Any]] = {}
    for route in decision["allowed"]:  # ranked: the first route of a model is its best
        entry = listed.setdefault(route["model"], {"rank": route["rank"], "provenance": route["provenance"],
                                                   "deployments": [], "gateway_names": []})
        entry["deployments"].append({k: route[k] for k in ("deployment", "rank", "price_per_mtok", "obligations")})
        entry["gateway_names"] += names.get((route["model"], route["deployment"]), [])
    data = []
    for model_id, clearance in listed.items():
        model = next(m for m in catalog.models if m.id == model_id)
        created = calendar.timegm(model.released_on.timetuple()) if model.released_on else 0
        data.append({"id": model_id, "object": "model", "created": created, "owned_by": model.vendor,
                     "clearance": clearance})
    return {"object": "list", "data": data, "decision_id": decision["decision_id"], "app_id": app_id,
            "workload_profile": profile, "policy_revision": decision["policy_revision"]}
