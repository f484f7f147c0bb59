"""The decision request: what an internal app asks before a model call.

Strict at the boundary: unknown fields and unknown enum values are refused with the field named,
types are never coerced (``"commercial": "no"`` or ``0``, ``"monthly_active_users": true`` or
``"5"`` are errors, not false and 1 and 5), and numbers are bounded so that absurd values are
refused rather than evaluated. Duplicate object keys are refused before this schema is applied
(``policy.strict_json``). What the app's profile adds or refuses is ``policy.profile``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, StringConstraints

from policy.catalog import (
    DangerousCapability,
    DataClassification,
    DeploymentMode,
    Identifier,
    QualityTier,
    RegulatoryTier,
    Sector,
    Task,
)
from policy.jurisdiction import JurisdictionCode

StrictFloat = Annotated[float, Strict()]  # a JSON number (an integer too), never a string or a bool


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Workload(_Request):
    task: Task
    quality_tier: QualityTier
    regulatory_tier: RegulatoryTier
    # None (or absent): every sector of the app's profile.
    sector: Sector | None = None
    # ISO 3166-1 alpha-2 codes ("UK" for GB) or the groups EU, EEA; None (or absent): the
    # profile's. An empty list is refused: it would name no jurisdiction at all.
    jurisdictions: Annotated[list[JurisdictionCode], Field(min_length=1, max_length=50)] | None = None
    data_classification: DataClassification
    dangerous_capability: DangerousCapability = DangerousCapability.none
    # Assumed commercial unless the app says otherwise: the safe side of a licence.
    commercial: StrictBool = True
    # Deprecated: accepted and recorded, but a licence's MAU cap is judged on the org's own
    # figures (org.yaml licensee_mau), as the licences measure it, never on this.
    monthly_active_users: Annotated[StrictInt, Field(ge=0, le=100_000_000_000, deprecated=(
        "recorded only: licence MAU caps are judged on the licensee's monthly figures in org.yaml"))] = 0
    min_context_tokens: Annotated[StrictInt, Field(ge=0, le=100_000_000)] = 0
    max_price_per_mtok: Annotated[StrictFloat, Field(gt=0, le=10_000)] | None = None
    # Every mode by default. A factory, not a list default: pydantic deep-copies a list default
    # into every request that leaves the field out (~3 % of the event loop's CPU per decision).
    deployment_modes: Annotated[list[DeploymentMode], Field(
        min_length=1, max_length=3, default_factory=lambda: list(DeploymentMode),
        json_schema_extra={"default": [mode.value for mode in DeploymentMode]})]


# Opaque identifiers of the caller's own systems: up to 200 printable characters (no control
# characters: they are recorded, shown on the page and used as search keys).
ContextText = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{0,200}$")]


class GatewayContext(_Request):
    """The gateway a call passed through, as the gateway reports it."""

    name: ContextText | None = None  # the gateway (gateways.yaml name)
    requested_model: ContextText | None = None  # the model name (alias) the client sent
    key_alias: ContextText | None = None  # the gateway's key the client authenticated with
    team: ContextText | None = None  # the gateway's team of that key
    call_id: ContextText | None = None  # the gateway's id of the call (e.g. LiteLLM call id)


class RequestContext(_Request):
    """Recorded with the decision, never judged; every member is searchable in the audit queries."""

    request_id: ContextText | None = None
    trace_id: ContextText | None = None  # e.g. a W3C trace id, to join the trail with traces
    gateway: GatewayContext | None = None

    def recorded(self) -> dict[str, object]:
        """The context as the audit entry records it: ``request_id`` always (null when absent, as
        entries always had it), every other member only when given."""
        dumped = self.model_dump(mode="json", exclude_none=True)
        return {"request_id": self.request_id, **dumped}


class DecisionRequest(_Request):
    """``workload`` or ``workload_profile`` (the name of one of the app's workloads in apps.yaml),
    not both: ``policy.profile`` refuses a request with both or neither (422)."""

    app_id: Identifier
    workload: Workload | None = None
    workload_profile: Identifier | None = None
    context: RequestContext = RequestContext()
