"""The audit trail over HTTP: search, counts, export, one decision, verification, public keys.

Everything but ``/v1/audit/keys`` needs an auditor key. The filter parameters are the models of
``api/filters.py``, shared with ``clearance audit …`` (``api/cli_audit.py``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from api.deps import Auditor, ServicesDep
from api.errors import ApiError, FieldError
from api.filters import DecisionsQuery, ExportQuery, StatsQuery
from api.schemas import FORBIDDEN, UNAUTHORIZED, error_examples
from audit import CheckpointError, CheckpointFileError
from audit.checkpoint_file import read_outside_checkpoint
from audit.export import stream_csv, stream_jsonl
from audit.log import consistency, inclusion, tile_content
from audit.queries import CursorError, find_decision, query_entries, stats
from audit.tlog.errors import ProofRequestError, TlogFormatError
from audit.witnessing import cosigned_checkpoint, judge_witnessed, parse_witnesses, stored_cosigned_note

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


class WitnessesOut(BaseModel):
    size: int
    min_cosignatures: int
    cosigned_by: list[str]
    missing: list[str]
    valid: bool
    message: str


class VerificationOut(BaseModel):
    log: str
    valid: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    check: str | None
    from_seq: int
    to_seq: int | None
    checkpoints_checked: int
    witnesses: WitnessesOut | None = Field(
        default=None, description="with CLEARANCE_WITNESSES: their cosignatures on the checkpoint at the end of "
                                  "the verified range")


class EntryStatus(BaseModel):
    leaf: str = Field(description="the leaf's bytes, hash, derived columns and blobs: valid, invalid")
    proof: str = Field(description="inclusion in the newest checkpoint signed by a trusted key: valid, "
                                   "invalid or not checked")
    overall: str


class EntryOut(BaseModel):
    seq: int
    recorded_at: str | None
    key_id: str | None
    leaf_hash: str
    body: dict[str, Any] = Field(description="the leaf body (RFC 8785 bytes hashed into the log)")
    input: Any = Field(description="the input blob named by the body's input_sha256")
    result: Any = Field(description="the result blob named by the body's result_sha256")
    receipt: dict[str, Any] | None = Field(
        description="entry, leaf hash, the newest checkpoint and the inclusion proof: checks offline "
                    "with verify_receipt and the pinned key")
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
    key_id: str | None
    leaf_hash: str
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
    found = await services.auditor_work.run(partial(find_decision, trusted=services.trusted_verifiers()), services.audit_reads,
                                            decision_id)
    if found is None:
        # Echo the id only when it is one: whatever else was put in the path (a pasted API key,
        # say) is not repeated back.
        raise ApiError(404, "not_found", f"no decision {decision_id!r} in the audit trail" if _is_uuid(decision_id)
                       else "no decision with this id in the audit trail (decision ids are UUIDs)")
    return {
        "seq": found.seq,
        "recorded_at": found.document.get("recorded_at"),
        "key_id": found.document.get("key_id"),
        "leaf_hash": found.leaf_hash.hex(),
        "body": found.document,
        "input": found.input,
        "result": found.result,
        "receipt": found.receipt,
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
                                     "checkpoint or its signature does not verify with a pinned key; `fields` names "
                                     "the file and the reason (an operator must repair or remove it)"),
    ),
    summary="Recompute hashes, signatures, links and checkpoints over a seq range (auditor)",
)
async def verify(
    services: ServicesDep,
    _: Auditor,
    from_seq: Annotated[int, Query(ge=1, le=2**62)] = 1,
    to_seq: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    min_cosignatures: Annotated[int | None, Query(
        ge=1, le=100, description="require at least this many of the configured witnesses (CLEARANCE_WITNESSES) "
                                  "to have cosigned the checkpoint at the end of the range")] = None,
) -> dict[str, Any]:
    if to_seq is not None and to_seq < from_seq:
        raise ApiError(422, "invalid_request", "to_seq must not be below from_seq",
                       fields=[FieldError(field="to_seq", reason="must not be below from_seq")])
    # More than the configured witnesses can never be met: an invalid answer, saying so.
    witnesses = [w.verifier for w in parse_witnesses(services.settings.witnesses or "")]
    checkpoint = services.settings.checkpoint_path()
    # lexists: a file that is there but cannot be read (or a dangling link) is reported, not skipped
    files = [checkpoint] if os.path.lexists(checkpoint) else []
    try:
        for path in files:  # read and signature-checked here, to name the file if it cannot serve
            await services.auditor_work.run(read_outside_checkpoint, path, services.trusted_verifiers())
        answer = await services.verify_trail(from_seq=from_seq, to_seq=to_seq, checkpoint_files=files)
    except CheckpointError as exc:
        reason = exc.reason if isinstance(exc, CheckpointFileError) and exc.reason else str(exc)
        raise ApiError(503, "checkpoint_unusable",
                       f"the exported checkpoint file {checkpoint} cannot be used to verify the trail: {reason}",
                       fields=[FieldError(field=str(checkpoint), reason=reason)]) from exc
    if (witnesses or min_cosignatures) and answer["valid"] and answer.get("log") == "v2" and answer.get("to_seq"):
        note = await services.auditor_work.run(
            _log_read, services.audit_reads, stored_cosigned_note, size=int(answer["to_seq"]),
            trusted=services.trusted_verifiers(), origin=services.settings.log_origin)
        if note is not None or min_cosignatures is not None:  # without a minimum: reported, not required
            answer = judge_witnessed(answer, note, witnesses, min_cosignatures or 0)
    return answer


# -- the transparency log: checkpoint, proofs, tiles ------------------------------------------


def _log_read(store: Any, read: Any, *, snapshot: bool = True, **kwargs: Any) -> Any:
    """``read(conn, **kwargs)`` on a snapshot of the log, or (``snapshot=False``: a read that is
    one consistent statement) on an idle connection."""
    with (store.log_snapshot() if snapshot else store.log_statement()) as conn:
        return read(conn, **kwargs)


async def _proof(services: Any, read: Any, field: str, **kwargs: Any) -> Any:
    try:  # a proof reads the head's size and its tiles in one statement: no snapshot needed
        return await services.auditor_work.run(_log_read, services.audit_reads, read, snapshot=False,
                                               tiles=services.proof_tiles, **kwargs)
    except ProofRequestError as exc:
        raise ApiError(422, "invalid_request", str(exc), fields=[FieldError(field=field, reason=str(exc))]) from None


@router.get(
    "/v1/audit/checkpoint",
    response_class=PlainTextResponse,
    responses=error_examples(UNAUTHORIZED, FORBIDDEN),
    summary="The newest signed checkpoint (C2SP tlog-checkpoint note) of the log, with the witnesses' "
            "cosignatures as extra signature lines (auditor)",
)
async def checkpoint(services: ServicesDep, _: Auditor) -> PlainTextResponse:
    found = await services.auditor_work.run(_log_read, services.audit_reads, cosigned_checkpoint)
    if found is None:
        raise ApiError(404, "not_found", "the log is empty: no checkpoint yet")
    return PlainTextResponse(found[1], headers={"Cache-Control": "no-store"})


class InclusionOut(BaseModel):
    seq: int
    size: int
    leaf_hash: str
    root: str
    inclusion_proof: list[str] = Field(description="hex hashes, RFC 9162 order (the leaf's sibling first)")


class ConsistencyOut(BaseModel):
    from_: int = Field(alias="from")
    to: int
    old_root: str
    new_root: str
    consistency_proof: list[str]


@router.get(
    "/v1/audit/proof/inclusion",
    response_model=InclusionOut,
    responses=error_examples(UNAUTHORIZED, FORBIDDEN),
    summary="The inclusion proof of entry seq in the tree of size leaves (auditor)",
)
async def inclusion_proof_of(
    services: ServicesDep, _: Auditor,
    seq: Annotated[int, Query(ge=1, le=2**62)],
    size: Annotated[int, Query(ge=1, le=2**62)],
) -> dict[str, Any]:
    if seq > size:
        raise ApiError(422, "invalid_request", "seq must not be above size",
                       fields=[FieldError(field="seq", reason="must not be above size")])
    return await _proof(services, inclusion, "size", seq=seq, size=size)  # type: ignore[no-any-return]


@router.get(
    "/v1/audit/proof/consistency",
    response_model=ConsistencyOut,
    response_model_by_alias=True,
    responses=error_examples(UNAUTHORIZED, FORBIDDEN),
    summary="The consistency proof between two tree sizes (auditor)",
)
async def consistency_proof_of(
    services: ServicesDep, _: Auditor,
    from_: Annotated[int, Query(alias="from", ge=0, le=2**62)],
    to: Annotated[int, Query(ge=0, le=2**62)],
) -> dict[str, Any]:
    if from_ > to:
        raise ApiError(422, "invalid_request", "from must not be above to",
                       fields=[FieldError(field="from", reason="must not be above to")])
    return await _proof(services, consistency, "to", old_size=from_, new_size=to)  # type: ignore[no-any-return]


@router.get(
    "/v1/audit/tlog/checkpoint",
    response_class=PlainTextResponse,
    responses=error_examples(UNAUTHORIZED, FORBIDDEN),
    summary="C2SP tlog-tiles: the newest checkpoint (auditor)",
)
async def tlog_checkpoint(services: ServicesDep, auditor: Auditor) -> PlainTextResponse:
    return await checkpoint(services, auditor)


@router.get(
    "/v1/audit/tlog/{path:path}",
    response_class=Response,
    responses=error_examples(UNAUTHORIZED, FORBIDDEN, (404, "not_found", "no such tile in the current tree")),
    summary="C2SP tlog-tiles: hash tiles and entry bundles of the current tree, read-only (auditor)",
)
async def tlog_tile(services: ServicesDep, _: Auditor, path: str) -> Response:
    try:
        data = await services.auditor_work.run(_log_read, services.audit_reads, tile_content, path=path)
    except (ProofRequestError, TlogFormatError) as exc:
        raise ApiError(404, "not_found", f"{path!r} is not a tile of the current tree: {exc}") from None
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})
