"""Response models of the HTTP API and the examples shown in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from policy.decision import ClearedRoute, DeniedRoute

DECISION_REQUEST_EXAMPLE: dict[str, Any] = {
    "app_id": "claims-summariser",
    "workload": {
        "task": "summarization",
        "quality_tier": "commodity",
        "regulatory_tier": "regulated",
        "sector": "financial_services",
        "jurisdictions": ["EU", "US"],
        "data_classification": "confidential",
        "dangerous_capability": "none",
        "commercial": True,
        "monthly_active_users": 1200000,
        "min_context_tokens": 32000,
        "max_price_per_mtok": 5.0,
        "deployment_modes": ["self_hosted", "vendor_api", "cloud"],
    },
    "context": {"request_id": "req-7f3a"},
}


class AuditReceipt(BaseModel):
    """Proof that the decision is in the log (``audit.tlog.receipt.verify_receipt`` checks it
    offline with the log's pinned verifier key)."""

    seq: int
    leaf_hash: str
    recorded_at: str
    entry: dict[str, Any]
    checkpoint: str
    inclusion_proof: list[str]


class DecisionResponse(BaseModel):
    decision_id: str
    outcome: str
    allowed: list[ClearedRoute]
    denied: list[DeniedRoute]
    policy_revision: str
    audit: AuditReceipt


class SimulationResponse(BaseModel):
    """A decision evaluated without being recorded: it has no id and no audit receipt."""

    simulated: bool = True
    outcome: str
    allowed: list[ClearedRoute]
    denied: list[DeniedRoute]
    policy_revision: str


class ModelSummary(BaseModel):
    id: str
    provenance: str
    status: str
    quality_tier: str
    routes: list[str]


class GitState(BaseModel):
    """The git commit of the policy directory when it was loaded, and whether it was dirty."""

    commit: str
    dirty: bool
    path: str


class ShadowInfo(BaseModel):
    revision: str
    directory: str
    git: GitState | None = None


class PolicySummary(BaseModel):
    """What any caller may know of the active policy: which revision decides, and the routes
    and reason codes its decisions speak of."""

    revision: str
    engine: str
    # None when the directory is not in a git work tree (the revision is the content hash).
    git: GitState | None = None
    models: list[ModelSummary]
    reason_codes: list[str]


class PolicyInfo(PolicySummary):
    """The whole picture, for an admin key: where the bundle lives on the server, its files,
    every app, the shadow candidate and the worker process that answered."""

    directory: str
    modules: list[str]
    files: list[str]
    apps: list[str]
    shadow: ShadowInfo | None = None
    # Each worker process holds its own policy: which one answered.
    pid: int


class ReloadResponse(BaseModel):
    outcome: str  # accepted (a refusal is a 422 error)
    revision: str
    previous_revision: str
    changed: bool
    directory: str
    git: GitState | None = None
    requested_by: str
    pid: int
    shadow: dict[str, Any] | None = None
    audit: AuditReceipt


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]


def error_examples(*pairs: tuple[int, str, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, each with an example body."""
    from api.errors import ErrorResponse

    return {
        status: {
            "model": ErrorResponse,
            "description": message,
            "content": {"application/json": {"example": {"error": {"code": code, "message": message, "fields": []}}}},
        }
        for status, code, message in pairs
    }


UNAUTHORIZED = (401, "unauthorized", "missing, malformed, unknown or revoked API key")
FORBIDDEN = (403, "forbidden", "this key's role may not do this")
