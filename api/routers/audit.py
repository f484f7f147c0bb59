"""The audit trail over HTTP: search, counts, export, one decision, verification, public keys.

Everything but ``/v1/audit/keys`` needs an auditor key. The filter parameters are the models of
``api/filters.py``, shared with ``clearance audit …`` (``api/cli_audit.py``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import Auditor, ServicesDep
from api.errors import ApiError, FieldError
from api.filters import DecisionsQuery, ExportQuery, StatsQuery
from api.schemas import FORBIDDEN, UNAUTHORIZED, error_examples
from audit import AuditStore, CheckpointError, CheckpointFileError, read_checkpoint_file
from audit.export import stream_csv, stream_jsonl
from audit.queries import CursorError, find_decision, query_entries, stats

router = APIRouter(tags=["audit"])

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
    kind: str = Field(description="decision, policy_reload, served (a gateway's served-route report) "
                                  "or key (a key created, rotated or revoked)")
    decision_id: str | None
    app_id: str | None
    caller_key_id: str | None
    outcome: str | None
    policy_revision: str | None
    engine: str | None
    regulatory_tier: str | None
    sector: str | None = Field(description="the sectors the workload was judged for, joined by commas "
                                           "(several when the request left the sector to the app's profile)")
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
async def list_decisions(
    services: ServicesDep, _: Auditor, query: Annotated[DecisionsQuery, Query()]
) -> dict[str, Any]:
    try:
        page = await services.auditor_work.run(query_entries, services.audit_reads, query.entry_filter(),
                                               limit=query.limit, cursor=query.cursor, order=query.order)
    except CursorError as exc:
        raise ApiError(422, "invalid_request", str(exc),
                       fields=[FieldError(field="cursor", reason=str(exc))]) from None
    return page.to_dict()


@router.get(
    "/v1/audit/stats",
    response_model=StatsOut,
    responses=_READ_ERRORS,
    summary="Count recorded entries by outcome, app, model, provenance, tier, reason, sector, kind, "
            "policy revision, dangerous capability "
            "per hour/day/week (auditor)",
)
async def audit_stats(
    services: ServicesDep, _: Auditor, query: Annotated[StatsQuery, Query()]
) -> dict[str, Any]:
    counted = await services.auditor_work.run(stats, services.audit_reads, query.entry_filter(),
                                              group_by=list(query.group_by), bucket=query.bucket)
    return counted.to_dict()


@router.get(
    "/v1/audit/export",
    responses={
        200: {"content": {"application/x-ndjson": {}, "text/csv": {}},
              "description": "JSONL (entries with their signed bytes) or CSV (summaries), streamed"},
        **_READ_ERRORS,
    },
    summary="Export matching entries as JSONL or CSV, streamed in constant memory (auditor)",
)
async def export(
    services: ServicesDep, _: Auditor, query: Annotated[ExportQuery, Query()]
) -> StreamingResponse:
    filt, reads = query.entry_filter(), services.audit_reads
    if query.format == "csv":
        chunks, media, suffix = stream_csv(reads, filt), "text/csv; charset=utf-8", "csv"
    else:
        chunks, media, suffix = stream_jsonl(reads, filt), "application/x-ndjson", "jsonl"
    # Each chunk is read on the auditor's threads. The first is read now, so that a database
    # failure is a 503, not a cut-off 200.
    first = await services.auditor_work.run(next, chunks, None)

    async def body() -> AsyncIterator[bytes]:
        chunk = first
        try:
            while chunk is not None:
                yield chunk
                chunk = await services.auditor_work.run(next, chunks, None)
        finally:
            # A client gone mid-way: the connection goes back to the pool now (unless a read is
            # still running on its thread; the generator then closes when it is collected).
            with contextlib.suppress(ValueError):
                chunks.close()

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
async def get_decision(services: ServicesDep, _: Auditor, decision_id: str) -> dict[str, Any]:
    found = await services.auditor_work.run(find_decision, services.audit_reads, decision_id)
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
    responses=error_examples(
        UNAUTHORIZED, FORBIDDEN,
        (503, "checkpoint_unusable", "the service's exported checkpoint file cannot be read, is not a "
                                     "checkpoint or its signature does not verify; `fields` names the file "
                                     "and the reason (an operator must repair or remove it)"),
    ),
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
    # lexists: a file that is there but cannot be read (or a dangling link) is reported, not skipped
    files = [checkpoint] if os.path.lexists(checkpoint) else []
    try:
        for path in files:  # read and signature-checked here, to name the file if it cannot serve
            await services.auditor_work.run(_usable_checkpoint, services.audit_reads, path)
        return await services.verify_trail(from_seq=from_seq, to_seq=to_seq, checkpoint_files=files)
    except CheckpointError as exc:
        reason = exc.reason if isinstance(exc, CheckpointFileError) and exc.reason else str(exc)
        raise ApiError(503, "checkpoint_unusable",
                       f"the exported checkpoint file {checkpoint} cannot be used to verify the trail: {reason}",
                       fields=[FieldError(field=str(checkpoint), reason=reason)]) from exc


def _usable_checkpoint(store: AuditStore, path: Path) -> None:
    read_checkpoint_file(path, keyring=store.keyring())
