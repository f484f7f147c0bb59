"""The decision request: what an internal app asks before a model call.

Strict at the boundary: unknown fields and unknown enum values are refused with the field named,
and numbers are bounded so that absurd values are refused rather than evaluated.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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

Jurisdiction = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Workload(_Request):
    task: Task
    quality_tier: QualityTier
    regulatory_tier: RegulatoryTier
    sector: Sector = Sector.general
    # ISO 3166 alpha-2 codes, plus "EU" for the European Union.
    jurisdictions: Annotated[list[Jurisdiction], Field(max_length=50)] = []
    data_classification: DataClassification
    dangerous_capability: DangerousCapability = DangerousCapability.none
    # Assumed commercial unless the app says otherwise: the safe side of a licence.
    commercial: bool = True
    # Deprecated: accepted and recorded, but a licence's MAU cap is judged on the org's own
    # figures (org.yaml licensee_mau), as the licences measure it, never on this.
    monthly_active_users: Annotated[int, Field(ge=0, le=100_000_000_000, deprecated=(
        "recorded only: licence MAU caps are judged on the licensee's monthly figures in org.yaml"))] = 0
    min_context_tokens: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    max_price_per_mtok: Annotated[float, Field(gt=0, le=10_000)] | None = None
    deployment_modes: Annotated[list[DeploymentMode], Field(min_length=1, max_length=3)] = [
        DeploymentMode.self_hosted,
        DeploymentMode.vendor_api,
        DeploymentMode.cloud,
    ]


class RequestContext(_Request):
    request_id: Annotated[str, StringConstraints(max_length=200)] | None = None


class DecisionRequest(_Request):
    app_id: Identifier
    workload: Workload
    context: RequestContext = RequestContext()
