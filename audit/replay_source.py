"""Recorded decisions for replay (impact analysis): ``(decision_id, input, result)``, oldest first.

Reads the signed bytes (``body``) and parses them; no verification (replay answers "what would
change", not "is the trail intact" — ``clearance audit verify`` answers that). Paged on the
primary key (seq), a page at a time on one connection, so memory stays constant however many
decisions are replayed; ``recorded_at`` bounds every page too, so PostgreSQL only visits the
monthly partitions that can hold them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text

from ._db import map_errors
from .store import AuditStore

__all__ = ["iter_decision_inputs"]

PAGE_SQL = text(
    "SELECT seq, decision_id::text, input_data, result_data FROM audit_log "
    "WHERE kind = 'decision' AND seq > :after AND recorded_at >= :since "
    "ORDER BY seq LIMIT :limit"
)
# Where the newest `last` decisions begin: the seq and time of the oldest of them.
LAST_START_SQL = text(
    "SELECT seq, recorded_at FROM audit_leaves WHERE kind = 'decision' "
    "ORDER BY seq DESC OFFSET :skip LIMIT 1"
)
FIRST_SINCE_SQL = text("SELECT min(seq) FROM audit_leaves WHERE recorded_at >= :since")

_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def iter_decision_inputs(
    store: AuditStore,
    *,
    since: datetime | None = None,
    last: int | None = None,
    page_size: int = 1000,
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Decision entries recorded at or after ``since`` and/or the newest ``last`` of them.

    With neither, every decision. Raises ``AuditUnavailable`` if the database fails.
    """
    if last is not None and last <= 0:
        return
    lower_seq, lower_time = 0, since or _EPOCH
    with map_errors("reading decisions to replay"), store.engine.connect() as conn:
        if since is not None:
            first = conn.execute(FIRST_SINCE_SQL, {"since": since}).scalar()
            if first is None:
                return
            lower_seq = int(first) - 1
        if last is not None:
            row = conn.execute(LAST_START_SQL, {"skip": last - 1}).first()
            if row is not None:
                lower_seq, lower_time = max(lower_seq, int(row[0]) - 1), max(lower_time, row[1])
        after = lower_seq
        while True:
            rows = conn.execute(PAGE_SQL, {"after": after, "since": lower_time, "limit": page_size}).all()
            for _seq, decision_id, input_data, result_data in rows:
                # The result blob leaves decision_id out (it is in the leaf); put it back.
                result = orjson.loads(bytes(result_data)) if result_data is not None else None
                if isinstance(result, dict):
                    result = {"decision_id": decision_id, **result}
                yield decision_id, orjson.loads(bytes(input_data)) if input_data is not None else None, result
            if len(rows) < page_size:
                return
            after = rows[-1][0]
            conn.rollback()  # end the page's transaction: no snapshot held across a long replay
