"""``POST /v1/decisions/{id}/served``: the route that actually served a decision.

A gateway retries and falls back; what finally served is known only after the call. The report
is recorded as an entry of its own (kind ``served``) beside the decision it reports on; a route
that decision did not clear is flagged (``route_not_cleared``) in the entry, counted in
``/metrics`` (``clearance_served_routes_total{status="uncleared"}``) and shown on the page.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.apikeys import Role
from api.deps import authenticate, documented, read_body, services_of
from api.errors import ApiError
from api.gateway_calls import gateway_of, judge_catalog_route, judge_route
from api.schemas import UNAUTHORIZED, error_examples
from audit import AuditUnavailable, served_fields
from audit.recorded import recorded_decision
from policy.catalog import Identifier
from policy.gateways import GatewayName
from policy.workload import RequestContext

router = APIRouter(prefix="/v1", tags=["gateways"])
FLAG = "route_not_cleared"


class ServedReport(BaseModel):
    """The route that served: a catalog route (``model`` and ``deployment``), or the gateway's
    name for it (``gateway_route``, mapped by gateways.yaml), not both."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: Identifier | None = None
    deployment: Identifier | None = None
    gateway_route: GatewayName | None = None
    context: RequestContext = RequestContext()

    @model_validator(mode="after")
    def _one_route(self) -> ServedReport:
        catalog = self.model is not None or self.deployment is not None
        if catalog == (self.gateway_route is not None):
            raise ValueError("name the route that served: model and deployment, or gateway_route (not both)")
        if catalog and (self.model is None or self.deployment is None):
            raise ValueError("a catalog route needs both model and deployment")
        return self


class ServedOut(BaseModel):
    decision_id: str
    served: dict[str, Any] = Field(description="decision_id, decision_seq, model, deployment, gateway_route, "
                                               "cleared, rank, reasons, flag")
    flag: str | None = Field(description="route_not_cleared when the decision did not clear the route")
    audit: dict[str, Any]


@router.post(
    "/decisions/{decision_id}/served",
    response_model=ServedOut,
    responses=error_examples(
        UNAUTHORIZED,
        (403, "forbidden", "the decision is of an app this key may not act for"),
        (404, "not_found", "no decision with this id"),
        (422, "invalid_request", "the report names no route, or both kinds"),
        (503, "audit_unavailable", "the report could not be recorded"),
    ),
    summary="Report the route that actually served a decision (recorded; an uncleared route is flagged)",
    openapi_extra=documented(ServedReport, {"catalog route": {"value": {
        "model": "gemma-4-31b", "deployment": "self-hosted", "context": {"gateway": {"call_id": "c-81"}}}}}),
)
async def report_served(http: Request, decision_id: str) -> Response:
    principal = await authenticate(http, Role.app, Role.gateway)
    report = await read_body(http, ServedReport)
    services = services_of(http)
    found = await run_in_threadpool(recorded_decision, services.store, decision_id)
    if found is None:
        raise ApiError(404, "not_found", "no decision with this id in the audit trail")
    if not principal.may_act_for(found.app_id):
        raise ApiError(403, "forbidden", "the decision is of an app this key may not act for")
    if report.gateway_route is not None:
        named = report.context.gateway.name if report.context.gateway else None
        verdict = judge_route(found.result, gateway_of(services, principal, named), report.gateway_route)
    else:
        assert report.model is not None and report.deployment is not None
        verdict = judge_catalog_route(found.result, f"{report.model}/{report.deployment}", report.model,
                                      report.deployment)
    flag = None if verdict.cleared else FLAG
    served = {"decision_id": found.result["decision_id"], "decision_seq": found.seq, "model": verdict.model,
              "deployment": verdict.deployment, "gateway_route": report.gateway_route,
              "cleared": verdict.cleared, "rank": verdict.rank, "reasons": verdict.reasons, "flag": flag}
    policy = services.policy.current
    fields = served_fields(app_id=found.app_id, caller_key_id=principal.key_id, policy_revision=policy.revision,
                           engine=policy.engine.name, context=report.context.recorded(),
                           served=served)
    try:
        receipt = await services.writer.append_async(fields)
    except AuditUnavailable:
        services.metrics.audit_failures.inc()
        raise
    services.metrics.served_routes.labels(status="cleared" if verdict.cleared else "uncleared").inc()
    body = {"decision_id": served["decision_id"], "served": served, "flag": flag, "audit": receipt.to_dict()}
    return Response(orjson.dumps(body), media_type="application/json")
