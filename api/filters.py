"""The filters of the audit endpoints and of ``clearance audit …``: one pydantic model each, so
the API and the CLI accept and refuse exactly the same values."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from audit.queries import BUCKETS, GROUP_KEYS, MAX_LIMIT, EntryFilter
from policy.catalog import Identifier, Provenance, RegulatoryTier, Sector
from policy.workload import ContextText

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


# The filters on the call an entry was made for (audit.filters.TRACE_KEYS), by parameter name.
TRACE_FILTERS = ("request_id", "trace_id", "gateway", "requested_model", "key_alias", "team", "call_id",
                 "served_for", "served")


def _rfc3339(value: Any) -> Any:
    """Only RFC 3339 timestamps with an offset: no dates alone, no epoch numbers, no naive times."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("the time needs a UTC offset (e.g. 2026-01-31T00:00:00Z)")
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("not an RFC 3339 time with an offset, e.g. 2026-01-31T00:00:00Z")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")]
Revision = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9:._-]{1,200}$")]


class AuditFilters(BaseModel):
    """The filters of ``/v1/audit/decisions``, ``/stats`` and ``/export`` (and the CLI)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    from_: Rfc3339 | None = Field(None, alias="from", description="recorded at or after (RFC 3339)")
    to: Rfc3339 | None = Field(None, description="recorded before (RFC 3339, exclusive)")
    app_id: Identifier | None = None
    model: Identifier | None = Field(None, description="the model among the cleared or denied routes")
    model_status: Literal["cleared", "denied"] | None = Field(
        None, description="with model: only entries where it was cleared, or denied")
    outcome: Literal["allow", "deny"] | None = None
    reason_code: ReasonCode | None = Field(None, description="a denied route carries this code")
    regulatory_tier: RegulatoryTier | None = None
    sector: Sector | None = None
    provenance: Provenance | None = Field(None, description="provenance of a cleared model")
    policy_revision: Revision | None = None
    decision_id: UUID | None = None
    kind: Literal["decision", "policy_reload", "served", "key"] | None = Field(
        None, description="the kind of entry (served: a gateway's report of the route that served; "
                          "key: a signing key or API key created, rotated or revoked)")
    # The call an entry was made for: its request's context (exact values).
    request_id: ContextText | None = Field(None, description="context.request_id")
    trace_id: ContextText | None = Field(None, description="context.trace_id")
    gateway: ContextText | None = Field(None, description="context.gateway.name")
    requested_model: ContextText | None = Field(None, description="context.gateway.requested_model")
    key_alias: ContextText | None = Field(None, description="context.gateway.key_alias")
    team: ContextText | None = Field(None, description="context.gateway.team")
    call_id: ContextText | None = Field(None, description="context.gateway.call_id")
    served_for: UUID | None = Field(None, description="served-route reports on this decision")
    served: Literal["cleared", "uncleared"] | None = Field(
        None, description="served-route reports whose route the decision cleared, or did not (flagged)")

    # Field validators (not a model validator) so that the error names the parameter.
    @field_validator("to")
    @classmethod
    def _after_from(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_")
        if value is not None and start is not None and value <= start:
            raise ValueError("to must be after from")
        return value

    @field_validator("model_status")
    @classmethod
    def _needs_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("model") is None:
            raise ValueError("model_status needs a model")
        return value

    def entry_filter(self) -> EntryFilter:
        return EntryFilter(
            start=self.from_, end=self.to, app_id=self.app_id, model=self.model,
            model_status=self.model_status, outcome=self.outcome, reason_code=self.reason_code,
            regulatory_tier=self.regulatory_tier.value if self.regulatory_tier else None,
            sector=self.sector.value if self.sector else None,
            provenance=self.provenance.value if self.provenance else None,
            policy_revision=self.policy_revision, decision_id=self.decision_id, kind=self.kind,
            trace=tuple((name, str(value)) for name in TRACE_FILTERS
                        if (value := getattr(self, name)) is not None),
        )


class DecisionsQuery(AuditFilters):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None
    order: Literal["desc", "asc"] = Field("desc", description="desc: newest first")


GroupKey = Literal["outcome", "app", "model", "provenance", "regulatory_tier", "reason_code", "sector",
                   "kind", "policy_revision", "dangerous_capability"]
assert set(GroupKey.__args__) == set(GROUP_KEYS)  # type: ignore[attr-defined]


def _split(value: Any) -> Any:
    """``a,b`` and ``a&a`` alike: the parameter repeated, each value comma-separated."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [part for v in value for part in _split(v)]
    return value


class StatsQuery(AuditFilters):
    group_by: Annotated[list[GroupKey], BeforeValidator(_split), Field(max_length=3)] = Field(
        default_factory=list, description="up to 3 of " + ", ".join(GROUP_KEYS)
        + "; comma-separated (group_by=outcome,app) or repeated (group_by=outcome&group_by=app)")
    bucket: Literal["hour", "day", "week"] | None = None

    @field_validator("group_by")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("group_by names a key twice")
        return value


assert set(BUCKETS) == {"hour", "day", "week"}


class ExportQuery(AuditFilters):
    format: Literal["jsonl", "csv"] = "jsonl"
