"""Schemas of the governance data in git: the model catalog, the apps and the org settings.

The YAML files under ``rego/data/`` are validated against these models before a bundle is
accepted; the same (validated, normalised) data is what the Rego rules see as ``data.models``,
``data.apps`` and ``data.org``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from policy.jurisdiction import JurisdictionCode, Jurisdictions

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class Strict(BaseModel):
    """Base for governance data: unknown keys are an error, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Provenance(StrEnum):
    open_western = "open_western"
    open_chinese = "open_chinese"
    gated_proprietary = "gated_proprietary"


class ModelStatus(StrEnum):
    available = "available"
    withheld = "withheld"
    deprecated = "deprecated"


class SafetyPostTraining(StrEnum):
    full = "full"
    partial = "partial"
    minimal = "minimal"
    none = "none"


class QualityTier(StrEnum):
    commodity = "commodity"
    advanced = "advanced"
    frontier = "frontier"


class Task(StrEnum):
    summarization = "summarization"
    classification = "classification"
    extraction = "extraction"
    qa = "qa"
    code_generation = "code_generation"
    writing = "writing"
    reasoning = "reasoning"
    agentic = "agentic"
    security_research = "security_research"
    gui_automation = "gui_automation"
    model_training = "model_training"
    other = "other"


class RegulatoryTier(StrEnum):
    minimal = "minimal"
    standard = "standard"
    regulated = "regulated"
    critical = "critical"


class Sector(StrEnum):
    general = "general"
    financial_services = "financial_services"
    healthcare = "healthcare"
    insurance = "insurance"
    legal = "legal"
    education = "education"
    critical_infrastructure = "critical_infrastructure"
    public_sector = "public_sector"
    defense = "defense"


class DataClassification(StrEnum):
    public = "public"
    internal = "internal"
    confidential = "confidential"
    restricted = "restricted"


class DangerousCapability(StrEnum):
    none = "none"
    cyber_defense = "cyber_defense"
    cyber_offense = "cyber_offense"
    bio_chem = "bio_chem"
    autonomous_gui = "autonomous_gui"
    persuasion = "persuasion"


class DeploymentMode(StrEnum):
    self_hosted = "self_hosted"
    vendor_api = "vendor_api"
    cloud = "cloud"


class ComplianceDoc(StrEnum):
    eu_ai_act_gpai = "eu_ai_act_gpai"
    soc2 = "soc2"
    iso_42001 = "iso_42001"
    iso_27001 = "iso_27001"
    hipaa_baa = "hipaa_baa"


Price = Annotated[float, Field(ge=0, le=10_000)]


class Licence(Strict):
    name: str = Field(min_length=1)
    spdx: str | None = None
    commercial_use: bool
    mau_cap: Annotated[int, Field(gt=0)] | None = None
    restricts_output_training: bool
    # Tasks or sectors the licence (or its acceptable-use policy) forbids.
    prohibited_uses: list[Task | Sector] = []
    attribution: str | None = None


class DangerousCapabilityEntry(Strict):
    # `class` is a Python keyword: the attribute is `class_`, the YAML/JSON key stays `class`.
    class_: DangerousCapability = Field(alias="class")
    level: Annotated[str, StringConstraints(pattern=r"^(low|medium|high|critical)$")]
    access_program: Identifier | None = None
    permitted_tasks: list[Task] = []

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Deployment(Strict):
    id: Identifier
    mode: DeploymentMode
    provider: str = Field(min_length=1)
    operator_country: CountryCode | None = None  # None: whoever self-hosts (the org itself)
    regions: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$")]] = []
    zero_data_retention: bool
    price_in_per_mtok: Price
    price_out_per_mtok: Price


class Model(Strict):
    id: Identifier
    name: str = Field(min_length=1)
    vendor: str = Field(min_length=1)
    origin_country: CountryCode
    provenance: Provenance
    status: ModelStatus
    licence: Licence
    safety_post_training: SafetyPostTraining
    compliance_docs: list[ComplianceDoc] = []
    systemic_risk: bool
    dangerous_capabilities: list[DangerousCapabilityEntry] = []
    capabilities: list[Task] = Field(min_length=1)
    quality_tier: QualityTier
    # Composite strength 0-100 used to rank frontier workloads (strongest first).
    strength: Annotated[int, Field(ge=0, le=100)]
    scores: dict[str, float] = {}
    context_tokens: Annotated[int, Field(gt=0, le=100_000_000)]
    deployments: list[Deployment] = Field(min_length=1)
    # Where each value came from: field name -> "FACTS.md", a seed article, or "assumption: …".
    sources: dict[str, str] = {}

    @model_validator(mode="after")
    def _unique_deployments(self) -> Model:
        ids = [d.id for d in self.deployments]
        if len(ids) != len(set(ids)):
            raise ValueError(f"deployment ids repeat: {sorted(ids)}")
        return self


class Attestation(Strict):
    """The org's own safety evaluation of one model for one regulatory tier."""

    model: Identifier
    regulatory_tier: RegulatoryTier
    evidence: str | None = None


class App(Strict):
    id: Identifier
    owner: str = Field(min_length=1)
    description: str | None = None
    programs: list[Identifier] = []
    capability_approvals: list[DangerousCapability] = []
    attestations: list[Attestation] = []
    # The profile, which binds every decision for the app (policy/profile.py): a request may
    # make it stricter, never looser.
    sectors: list[Sector] = Field(min_length=1)
    jurisdictions: list[JurisdictionCode] = Field(min_length=1)
    tasks: list[Task] | None = None  # None: every task
    data_classification_floor: DataClassification
    regulatory_tier_floor: RegulatoryTier
    # Named workloads a client may send instead of the fields: name -> workload as a request
    # would send it (validated with the request schema and against this profile).
    workloads: dict[Identifier, dict[str, Any]] = {}


class Org(Strict):
    restricted_origin_countries: list[CountryCode]
    # Sectors where models from a restricted origin are banned outright.
    restricted_origin_sectors: list[Sector]
    # Regions where restricted data may be processed by a route that is not self-hosted.
    restricted_data_regions: list[str]
    mau_warning_ratio: Annotated[float, Field(gt=0, le=1)] = 0.9
    # Tier critical: one of these documents (or the app's attestation) is required.
    critical_compliance_docs: list[ComplianceDoc] = [
        ComplianceDoc.soc2,
        ComplianceDoc.iso_42001,
        ComplianceDoc.eu_ai_act_gpai,
    ]


class Catalog(Strict):
    """The three data files of a bundle, validated together (cross-references checked)."""

    models: list[Model]
    apps: list[App]
    org: Org
    jurisdictions: Jurisdictions

    @model_validator(mode="after")
    def _cross_references(self) -> Catalog:
        model_ids = [m.id for m in self.models]
        if len(model_ids) != len(set(model_ids)):
            raise ValueError("model ids repeat")
        app_ids = [a.id for a in self.apps]
        if len(app_ids) != len(set(app_ids)):
            raise ValueError("app ids repeat")
        known = set(model_ids)
        for app in self.apps:
            for att in app.attestations:
                if att.model not in known:
                    raise ValueError(f"app {app.id!r}: attestation names unknown model {att.model!r}")
        return self

    def app(self, app_id: str) -> App | None:
        return next((a for a in self.apps if a.id == app_id), None)
