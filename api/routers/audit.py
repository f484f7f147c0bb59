"""The audit trail over HTTP: public keys, one decision, verification of a range."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.deps import Auditor, ServicesDep
from api.errors import ApiError
from api.schemas import FORBIDDEN, UNAUTHORIZED, error_examples
from audit import verify_database
from audit.queries import find_decision

router = APIRouter(tags=["audit"])


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


class EntryOut(BaseModel):
    seq: int
    recorded_at: str | None
    key_id: str
    prev_hash: str
    entry_hash: str
    signature: str
    body: dict[str, Any]
    verification: VerificationOut
    duplicate_decision_id: bool


@router.get("/v1/audit/keys", response_model=KeysOut, summary="Public keys that sign entries (no auth)")
def audit_keys(services: ServicesDep) -> dict[str, Any]:
    return services.store.keyring().to_dict()


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=EntryOut,
    responses=error_examples(UNAUTHORIZED, FORBIDDEN, (404, "not_found", "no decision with this id in the audit trail")),
    summary="One recorded decision: the whole signed entry and its verification status (auditor)",
)
def get_decision(services: ServicesDep, _: Auditor, decision_id: str) -> dict[str, Any]:
    found = find_decision(services.store, decision_id)
    if found is None:
        raise ApiError(404, "not_found", f"no decision {decision_id!r} in the audit trail")
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
        raise ApiError(422, "invalid_request", "to_seq must not be below from_seq")
    checkpoint = services.settings.checkpoint_path()
    files = [checkpoint] if checkpoint.is_file() else []
    result = await run_in_threadpool(
        verify_database, services.store, from_seq=from_seq, to_seq=to_seq, checkpoint_files=files)
    return result.to_dict()
