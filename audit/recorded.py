"""One recorded decision as a served-route report needs it: where it is, whose it is, what it cleared.

Reads the decision's result blob (v2 log); no verification (the report
records the decision's ``seq`` beside its own, and verification of the trail covers both).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text

from ._db import map_errors
from .store import AuditStore

__all__ = ["RecordedDecision", "recorded_decision"]

DECISION_SQL = text(
    "SELECT l.seq, l.app_id, b.data FROM audit_leaves l JOIN audit_blobs b ON b.sha256 = l.result_sha256 "
    "WHERE l.decision_id = :decision_id AND l.kind = 'decision' "
    "ORDER BY l.seq LIMIT 1"
)


@dataclass(frozen=True)
class RecordedDecision:
    seq: int
    app_id: str
    result: dict[str, Any]  # the decision as answered (allowed, denied, …), without its receipt


def recorded_decision(store: AuditStore, decision_id: str) -> RecordedDecision | None:
    """The decision recorded under ``decision_id`` (None if there is none, or it is not a UUID).
    Raises :class:`~audit.errors.AuditUnavailable` if the database cannot be read."""
    try:
        wanted = uuid.UUID(decision_id)
    except ValueError:
        return None
    with map_errors("looking up a decision"), store.engine.connect() as conn:
        row = conn.execute(DECISION_SQL, {"decision_id": wanted}).first()
    if row is None:
        return None
    result = orjson.loads(bytes(row.data))  # the result blob: the decision without its id and receipt
    return RecordedDecision(seq=int(row.seq), app_id=str(row.app_id), result={"decision_id": str(wanted), **result})
