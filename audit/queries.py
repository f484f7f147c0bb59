"""Reading the trail for people: one decision with its verification status.

Reads only; every answer is derived from the signed bytes, and a looked-up entry is verified
(hash, signature, link to its predecessor, derived columns) before it is shown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text

from ._db import map_errors
from .chain import StoredEntry
from .store import AuditStore
from .verify import VerificationResult, verify_database

SELECT_SEQ_BY_DECISION_SQL = text(
    "SELECT seq FROM audit_entries WHERE decision_id = :decision_id ORDER BY seq LIMIT 2"
)


@dataclass(frozen=True)
class FoundEntry:
    entry: StoredEntry
    document: dict[str, Any]
    verification: VerificationResult
    duplicates: bool  # the same decision id under two seqs: itself a finding


def find_decision(store: AuditStore, decision_id: str) -> FoundEntry | None:
    """The entry recording ``decision_id`` (None if there is none), verified on the way out."""
    try:
        wanted = uuid.UUID(decision_id)
    except ValueError:
        return None
    with map_errors("looking up a decision"), store.engine.connect() as conn:
        seqs = [row[0] for row in conn.execute(SELECT_SEQ_BY_DECISION_SQL, {"decision_id": wanted})]
    if not seqs:
        return None
    seq = seqs[0]
    with store.snapshot() as snapshot:
        entry = next(iter(snapshot.fetch_entries(seq, seq)))
    verification = verify_database(store, from_seq=seq, to_seq=seq)
    return FoundEntry(entry=entry, document=orjson.loads(entry.body), verification=verification,
                      duplicates=len(seqs) > 1)
