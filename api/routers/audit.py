"""The audit trail over HTTP: search, counts, export, one decision, verification, public keys.

Everything but ``/v1/audit/keys`` needs an auditor key. The filter parameters are one pydantic
model (:class:`AuditFilters`) shared with ``clearance audit …`` (``api/cli_audit.py``), so the
API and the CLI accept and refuse exactly the same values.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from api.deps import Auditor, ServicesDep
from api.errors import ApiError, FieldError
from api.schemas import FORBIDDEN, UNAUTHORIZED, error_examples
from audit import verify_database
from audit.export import stream_csv, stream_jsonl
from audit.queries import (
    BUCKETS,
    GROUP_KEYS,
    MAX_LIMIT,
    CursorError,
    EntryFilter,
    find_decision,
    query_entries,
    stats,
)
from policy.catalog import Identifier, Provenance, RegulatoryTier, Sector

router = APIRouter(tags=["audit"])

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


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
            policy_revision=self.policy_revision, decision_id=self.decision_id,
        )


class DecisionsQuery(AuditFilters):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None
    order: Literal["desc", "asc"] = Field("desc", description="desc: newest first")


GroupKey = Literal["outcome", "app", "model", "provenance", "regulatory_tier", "reason_code", "sector"]
assert set(GroupKey.__args__) == set(GROUP_KEYS)  # type: ignore[attr-defined]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return _split(value[0])
    return value


class StatsQuery(AuditFilters):
    group_by: Annotated[list[GroupKey], BeforeValidator(_split), Field(max_length=3)] = Field(
        default_factory=list, description="comma-separated: " + ", ".join(GROUP_KEYS))
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


# -- response models --------------------------------------------------------------------------


class PublicKeyOut(BaseModel):
    key_id: str
    algorithm: str
    public_key: str
    created_at: str | None


class KeysOut(BaseModel):
    format: str
    keys: list[PublicKeyOut]


class VerificationOut(BaseModel):
    valid: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    check: str | None
    from_seq: int
    to_seq: int | None
    checkpoints_checked: int


class EntryStatus(BaseModel):
    signature: str
    link: str
    overall: str


class EntryOut(BaseModel):
    seq: int
    recorded_at: str | None
    key_id: str
    prev_hash: str
    entry_hash: str
    signature: str
    body: dict[str, Any]
    verification: VerificationOut
    status: EntryStatus
    duplicate_decision_id: bool


class EntrySummary(BaseModel):
    seq: int
    recorded_at: str
    decision_id: str | None
    app_id: str | None
    caller_key_id: str | None
    outcome: str | None
    policy_revision: str | None
    engine: str | None
    regulatory_tier: str | None
    sector: str | None
    models_allowed: list[str]
    models_denied: list[str]
    reason_codes: list[str]
    provenances_allowed: list[str]
    key_id: str
    entry_hash: str
    model_denials: list[dict[str, Any]] | None = Field(
        None, description="with a model filter: that model's denied routes and their reasons")


class PageOut(BaseModel):
    items: list[EntrySummary]
    next_cursor: str | None


class StatsOut(BaseModel):
    group_by: list[str]
    bucket: str | None
    total: int
    groups: list[dict[str, Any]]
    truncated: bool


_READ_ERRORS = error_examples(
    UNAUTHORIZED, FORBIDDEN,
    (422, "invalid_request", "a filter value is invalid; `fields` names the parameter"),
    (503, "audit_unavailable", "the audit database cannot be read"),
)


# -- endpoints --------------------------------------------------------------------------------


@router.get("/v1/audit/keys", response_model=KeysOut, summary="Public keys that sign entries (no auth)")
def audit_keys(services: ServicesDep) -> dict[str, Any]:
    return services.store.keyring().to_dict()


@router.get(
    "/v1/audit/decisions",
    response_model=PageOut,
    response_model_exclude_none=False,
    responses=_READ_ERRORS,
    summary="Search recorded decisions, newest first, one keyset page at a time (auditor)",
)
def list_decisions(
    services: ServicesDep, _: Auditor, query: Annotated[DecisionsQuery, Query()]
) -> dict[str, Any]:
    try:
        page = query_entries(services.store, query.entry_filter(), limit=query.limit,
                             cursor=query.cursor, order=query.order)
    except CursorError as exc:
        raise ApiError(422, "invalid_request", str(exc),
                       fields=[FieldError(field="cursor", reason=str(exc))]) from None
    return page.to_dict()


@router.get(
    "/v1/audit/stats",
    response_model=StatsOut,
    responses=_READ_ERRORS,
    summary="Count recorded decisions by outcome, app, model, provenance, tier, reason, sector "
            "per hour/day/week (auditor)",
)
def audit_stats(
    services: ServicesDep, _: Auditor, query: Annotated[StatsQuery, Query()]
) -> dict[str, Any]:
    return stats(services.store, query.entry_filter(), group_by=list(query.group_by),
                 bucket=query.bucket).to_dict()


@router.get(
    "/v1/audit/export",
    responses={
        200: {"content": {"application/x-ndjson": {}, "text/csv": {}},
              "description": "JSONL (entries with their signed bytes) or CSV (summaries), streamed"},
        **_READ_ERRORS,
    },
    summary="Export matching entries as JSONL or CSV, streamed in constant memory (auditor)",
)
def export(
    services: ServicesDep, _: Auditor, query: Annotated[ExportQuery, Query()]
) -> StreamingResponse:
    filt = query.entry_filter()
    if query.format == "csv":
        chunks, media, suffix = stream_csv(services.store, filt), "text/csv; charset=utf-8", "csv"
    else:
        chunks, media, suffix = stream_jsonl(services.store, filt), "application/x-ndjson", "jsonl"
    # Read the first page now, so that a database failure is a 503, not a cut-off 200.
    first = next(chunks, b"")

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    return StreamingResponse(body(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="clearance-audit.{suffix}"',
        "Cache-Control": "no-store"})


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=EntryOut,
    responses=error_examples(UNAUTHORIZED, FORBIDDEN, (404, "not_found", "no decision with this id in the audit trail")),
    summary="One recorded decision: the whole signed entry and its verification status (auditor)",
)
def get_decision(services: ServicesDep, _: Auditor, decision_id: str) -> dict[str, Any]:
    found = find_decision(services.store, decision_id)
    if found is None:
        # Echo the id only when it is one: whatever else was put in the path (a pasted API key,
        # say) is not repeated back.
        raise ApiError(404, "not_found", f"no decision {decision_id!r} in the audit trail" if _is_uuid(decision_id)
                       else "no decision with this id in the audit trail (decision ids are UUIDs)")
    entry = found.entry
    return {
        "seq": entry.seq,
        "recorded_at": found.document.get("recorded_at"),
        "key_id": entry.key_id,
        "prev_hash": entry.prev_hash.hex(),
        "entry_hash": entry.entry_hash.hex(),
        "signature": base64.b64encode(entry.signature).decode("ascii"),
        "body": found.document,
        "verification": found.verification.to_dict(),
        "status": found.status(),
        "duplicate_decision_id": found.duplicates,
    }


@router.get(
    "/v1/audit/verify",
    response_model=VerificationOut,
    responses=error_examples(UNAUTHORIZED, FORBIDDEN),
    summary="Recompute hashes, signatures, links and checkpoints over a seq range (auditor)",
)
async def verify(
    services: ServicesDep,
    _: Auditor,
    from_seq: Annotated[int, Query(ge=1, le=2**62)] = 1,
    to_seq: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> dict[str, Any]:
    if to_seq is not None and to_seq < from_seq:
        raise ApiError(422, "invalid_request", "to_seq must not be below from_seq",
                       fields=[FieldError(field="to_seq", reason="must not be below from_seq")])
    checkpoint = services.settings.checkpoint_path()
    files = [checkpoint] if checkpoint.is_file() else []
    result = await run_in_threadpool(
        verify_database, services.store, from_seq=from_seq, to_seq=to_seq, checkpoint_files=files)
    return result.to_dict()
