"""Liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.schemas import Health, Readiness
from audit.migrate import head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, summary="Database reachable, schema current, bundle loaded, writer running",
            responses={503: {"model": Readiness, "description": "not ready; `checks` says what is wrong"}})
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        found = services.store.schema_revision()
        expected = head_revision()
        checks["database"] = "ok"
        checks["migrations"] = "ok" if found == expected else f"at {found}, expected {expected}: run `clearance db upgrade`"
    except Exception as exc:  # any failure to reach the database is "not ready", never a 500
        checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
    checks["policy"] = services.policy.current.revision
    checks["audit_writer"] = "ok" if services.writer.running else "stopped"
    ready = checks["database"] == "ok" and checks["migrations"] == "ok" and checks["audit_writer"] == "ok"
    body = Readiness(ready=ready, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
