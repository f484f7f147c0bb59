"""Reading the chain: the head, keys, checkpoints and pages of entries, inside one snapshot.

``AuditStore.snapshot()`` opens a REPEATABLE READ, read-only transaction and hands out a
:class:`StoreSnapshot`; verification, evidence packs and the decision lookup read through it,
and :func:`read_entries` is the one reader of entry pages (also used by verification's worker
processes, each in the same exported snapshot).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ._db import map_errors
from .chain import StoredEntry
from .checkpoints import StoredCheckpoint
from .entry import ENTRY_COLUMNS
from .errors import AuditUnavailable
from .keys import Keyring

__all__ = ["ChainHeadState", "StoreSnapshot", "read_entries"]

SELECT_HEAD_SQL = "SELECT log_id, seq, head_hash, recorded_at FROM audit_chain_head WHERE id = 1"
# A page of entries in chain order, duplicates kept (keyset on the primary key of every
# partition). Read in binary, so the signed bytes arrive as stored rather than hex-encoded;
# PostgreSQL never parses them here, so a body that is not JSON (tampering) reaches the verifier.
SELECT_ENTRIES_PAGE_SQL = (
    f"SELECT {', '.join(ENTRY_COLUMNS)} FROM audit_entries "
    "WHERE (seq, recorded_at) > (%(after_seq)s, %(after_at)s::timestamptz) "
    "AND seq <= %(to_seq)s ORDER BY seq, recorded_at LIMIT %(limit)s"
)
SELECT_CHECKPOINTS_SQL = (
    "SELECT seq, head_hash, recorded_at, key_id, body, signature FROM audit_checkpoints "
    "WHERE seq BETWEEN %(from_seq)s AND %(to_seq)s ORDER BY seq"
)
SELECT_KEYS_SQL = (
    "SELECT key_id, public_key, created_at FROM audit_signing_keys ORDER BY created_at, key_id"
)

MAX_SEQ = 2**63 - 1


@dataclass(frozen=True)
class ChainHeadState:
    """The chain head row: the log's id, its last seq and that entry's hash."""

    log_id: str
    seq: int
    head_hash: bytes
    recorded_at: datetime | None


class StoreSnapshot:
    """Reads inside one REPEATABLE READ transaction: the fetch functions verification uses."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The connection whose transaction holds the snapshot (for reads made elsewhere)."""
        return self._conn

    def head(self) -> ChainHeadState:
        with map_errors("reading the chain head"):
            return head_state(self._conn.execute(SELECT_HEAD_SQL).fetchone())

    def keyring(self) -> Keyring:
        with map_errors("listing signing keys"):
            rows = self._conn.execute(SELECT_KEYS_SQL).fetchall()
        return Keyring.from_rows(rows)

    def fetch_entries(
        self, from_seq: int, to_seq: int | None = None, *, page_size: int = 1000
    ) -> Iterator[StoredEntry]:
        """Rows with ``from_seq <= seq <= to_seq`` in (seq, recorded_at) order, duplicates kept."""
        return read_entries(self._conn, from_seq, to_seq, page_size=page_size)

    def fetch_checkpoints(
        self, from_seq: int, to_seq: int | None = None
    ) -> list[StoredCheckpoint]:
        """Stored checkpoints with ``from_seq <= seq <= to_seq``, as stored (not yet checked)."""
        with map_errors("reading checkpoints"):
            rows = self._conn.execute(
                SELECT_CHECKPOINTS_SQL,
                {"from_seq": from_seq, "to_seq": MAX_SEQ if to_seq is None else to_seq},
            ).fetchall()
        return [
            StoredCheckpoint(
                seq=seq, head_hash=bytes(head_hash), recorded_at=recorded_at, key_id=key_id,
                body=bytes(body), signature=bytes(signature),
            )
            for seq, head_hash, recorded_at, key_id, body, signature in rows
        ]


def read_entries(
    conn: psycopg.Connection[Any], from_seq: int, to_seq: int | None = None, *, page_size: int = 1000
) -> Iterator[StoredEntry]:
    """Entries ``from_seq <= seq <= to_seq`` (``None``: to the end) read through ``conn`` a page
    at a time, in (seq, recorded_at) order with duplicates kept: the one reader of entries for
    verification (also in its worker processes) and evidence packs."""
    params: dict[str, Any] = {
        "after_seq": from_seq - 1, "after_at": "infinity",
        "to_seq": MAX_SEQ if to_seq is None else to_seq, "limit": page_size,
    }
    while True:
        with map_errors("reading audit entries"), conn.cursor(binary=True) as cur:
            rows = cur.execute(SELECT_ENTRIES_PAGE_SQL, params).fetchall()
        for row in rows:
            yield _stored_entry(row)
        if len(rows) < page_size:
            return
        params.update(after_seq=rows[-1][0], after_at=rows[-1][1])


def head_state(row: Any) -> ChainHeadState:
    if row is None:
        raise AuditUnavailable("the chain head row is missing: was the database migrated?")
    log_id, seq, head_hash, recorded_at = row
    return ChainHeadState(
        log_id=str(log_id), seq=int(seq), head_hash=bytes(head_hash), recorded_at=recorded_at
    )


def _stored_entry(row: Sequence[Any]) -> StoredEntry:
    values = dict(zip(ENTRY_COLUMNS, row, strict=True))
    values["prev_hash"] = bytes(values["prev_hash"])
    decision_id = values["decision_id"]
    if decision_id is not None and not isinstance(decision_id, uuid.UUID):
        values["decision_id"] = uuid.UUID(str(decision_id))
    return StoredEntry(
        seq=values["seq"],
        recorded_at=values["recorded_at"],
        key_id=values["key_id"],
        prev_hash=values["prev_hash"],
        entry_hash=bytes(values["entry_hash"]),
        signature=bytes(values["signature"]),
        body=bytes(values["body"]),
        columns=values,
    )
