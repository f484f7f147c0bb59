"""Schemas of the governance data in git: the model catalog, the apps and the org settings.

The YAML files under ``rego/data/`` are validated against these models before a bundle is
accepted; the same (validated, normalised) data is what the Rego rules see as ``data.models``,
``data.apps`` and ``data.org``.
"""

from __future__ import annotations

import datetime
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints, field_validator, model_validator

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


class MauScope(StrEnum):
    """Whose monthly active users a licence's cap counts."""

    licensee_and_affiliates = "licensee_and_affiliates"  # Llama 4 Community License §2
    licensee = "licensee"  # Tencent Hunyuan Community License §4


class MauPeriod(StrEnum):
    """When a licence's cap is measured."""

    # On the version's release date, the users of the preceding calendar month.
    calendar_month_before_release = "calendar_month_before_release"


class MauCap(Strict):
    """A monthly-active-user cap as the licence states it: how many, whose, and when."""

    threshold: Annotated[StrictInt, Field(gt=0)]
    measures: MauScope
    period: MauPeriod


class LicenceTerm(StrEnum):
    """The terms of a licence that a clause can be cited for (keys of ``Licence.clauses``)."""

    commercial_use = "commercial_use"
    mau_cap = "mau_cap"
    excluded_territories = "excluded_territories"
    restricts_output_training = "restricts_output_training"
    prohibited_uses = "prohibited_uses"
    attribution = "attribution"
    name_prefix = "name_prefix"
    acceptable_use_policy = "acceptable_use_policy"


# ISO 3166-1 alpha-2 (checked against pycountry's ISO 3166 database) or the groups EU and EEA,
# as workload jurisdictions are written; UK is refused below (GB is the code).
Territory = JurisdictionCode
Url = Annotated[str, StringConstraints(pattern=r"^https://\S+$")]


class Licence(Strict):
    name: str = Field(min_length=1)
    # Where the licence's text is published.
    url: Url | None = None
    spdx: str | None = None
    commercial_use: bool
    mau_cap: MauCap | None = None
    # Territories where the licence grants nothing (LICENCE_TERRITORY).
    excluded_territories: list[Territory] = []
    restricts_output_training: bool
    # Tasks or sectors the licence (or its acceptable-use policy) forbids.
    prohibited_uses: list[Task | Sector] = []
    attribution: str | None = None
    # The name a model trained on the outputs must begin with (obligation name_prefix:<text>).
    name_prefix: str | None = Field(default=None, min_length=1)
    # The acceptable-use policy the licence incorporates (obligation acceptable_use_policy:<url>).
    acceptable_use_policy: Url | None = None
    # term -> the clause that states it ("§2"), cited in reason messages.
    clauses: dict[LicenceTerm, Annotated[str, Field(min_length=1, max_length=80)]] = {}

    @field_validator("excluded_territories")
    @classmethod
    def _iso_codes(cls, territories: list[str]) -> list[str]:
        if "UK" in territories:
            raise ValueError("UK is not an ISO 3166-1 code: the United Kingdom is GB")
        if len(territories) != len(set(territories)):
            raise ValueError(f"territories repeat: {territories}")
        return territories

    def terms(self) -> list[str]:
        """The ``sources`` keys (under ``licence``) this licence's terms must be sourced by."""
        present = {
            "commercial_use": not self.commercial_use,
            "mau_cap": self.mau_cap is not None,
            "excluded_territories": bool(self.excluded_territories),
            "restricts_output_training": self.restricts_output_training,
            "prohibited_uses": bool(self.prohibited_uses),
            "attribution": self.attribution is not None,
            "name_prefix": self.name_prefix is not None,
            "acceptable_use_policy": self.acceptable_use_policy is not None,
        }
        return [term for term, there in present.items() if there]


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
    # This route's own terms, replacing the model's licence for it (an API's commercial terms
    # can differ from the licence of the weights).
    licence: Licence | None = None


class Model(Strict):
    id: Identifier
    name: str = Field(min_length=1)
    vendor: str = Field(min_length=1)
    origin_country: CountryCode
    provenance: Provenance
    status: ModelStatus
    # The release date of this model version: a licence's MAU cap is measured before it.
    released_on: datetime.date | None = None
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

    @model_validator(mode="after")
    def _licence_terms_sourced(self) -> Model:
        """Every licence term the policy acts on says where it comes from, and a capped
        licence knows the release date its cap is measured before."""
        capped = self.licence.mau_cap is not None or any(
            d.licence is not None and d.licence.mau_cap is not None for d in self.deployments
        )
        if capped and self.released_on is None:
            raise ValueError("released_on is required: a licence's MAU cap is measured before the release date")
        needed = [f"licence.{term}" for term in self.licence.terms()]
        needed += [f"deployments.{d.id}.licence" for d in self.deployments if d.licence is not None]
        needed += ["released_on"] if self.released_on is not None else []
        missing = [key for key in needed if key not in self.sources]
        if missing:
            raise ValueError(f"sources lacks {missing}: say where each licence term comes from (URL and clause, or 'assumption: …')")
        return self


def _month(value: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-(?:0[1-9]|1[0-2])", value):
        raise ValueError(f"{value!r} is not a calendar month: write YYYY-MM, e.g. 2025-03")
    return value


Month = Annotated[str, AfterValidator(_month)]
MauFigure = Annotated[StrictInt, Field(ge=0, le=100_000_000_000)]


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
    # The named workload a caller gets when it names none: what GET /v1/models lists for, and
    # what a gateway's check decides when the call does not name a profile. None: such calls
    # are refused (422) for this app.
    default_workload: Identifier | None = None

    @model_validator(mode="after")
    def _default_is_named(self) -> App:
        if self.default_workload is not None and self.default_workload not in self.workloads:
            raise ValueError(f"default_workload {self.default_workload!r} is not one of the app's workloads "
                             f"({', '.join(sorted(self.workloads)) or 'none'})")
        return self


class Org(Strict):
    restricted_origin_countries: list[CountryCode]
    # Sectors where models from a restricted origin are banned outright.
    restricted_origin_sectors: list[Sector]
    # Regions where restricted data may be processed by a route that is not self-hosted.
    restricted_data_regions: list[str]
    mau_warning_ratio: Annotated[float, Field(gt=0, le=1)] = 0.9
    # The licensee's monthly active users by calendar month ("YYYY-MM"): the users of the
    # products and services made available by or for the licensee and its affiliates.
    licensee_mau: dict[Month, MauFigure] = {}
    # The same without the affiliates, for licences that count the licensee alone; when
    # absent, such licences are judged on licensee_mau (the larger figure: the safe side).
    licensee_mau_without_affiliates: dict[Month, MauFigure] = {}
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
