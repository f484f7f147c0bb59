"""The invariants every fault test ends with, read straight from the v2 log's tables.

* every decision answered 200 is in the log, at the seq its receipt named (no decision lost);
* leaf seqs run 1..head size without a gap or a repeat, and no decision id is recorded twice;
* one signed checkpoint per batch: the leaves between two stored checkpoints were appended
  together (one ``recorded_at``, the checkpoint's own, and one signer), and the newest
  checkpoint is of the head;
* the log verifies (leaf hashes, columns, blobs, subtrees, every checkpoint's signature and
  root, the head — and any checkpoint exported outside the database).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from audit import AuditStore, VerificationResult
from tests.audit.helpers import verify_whole

from .figures import Figures
from .load import Answer


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class TrailCheck:
    entries: int
    head_seq: int
    missing_seqs: list[int]
    duplicate_seqs: list[int]
    duplicate_decision_ids: list[str]
    answered: int  # decisions answered 200
    lost: list[str]  # answered 200, not in the trail
    wrong_seq: list[tuple[str, int, int]]  # (decision id, receipt seq, stored seq)
    unanswered_entries: int  # recorded, but the caller got no 200 (the ambiguous-commit case)
    verification: VerificationResult
    checkpoints: int = 0
    batch_problems: list[str] = field(default_factory=list)  # checkpoint ranges that are not one batch

    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} decisions answered 200 are not in the trail: {self.lost[:5]}")
        if self.wrong_seq:
            found.append(f"receipts name another seq than the trail: {self.wrong_seq[:5]}")
        if self.missing_seqs:
            found.append(f"missing seqs {self.missing_seqs[:10]}")
        if self.duplicate_seqs:
            found.append(f"duplicate seqs {self.duplicate_seqs[:10]}")
        if self.duplicate_decision_ids:
            found.append(f"decision ids recorded twice {self.duplicate_decision_ids[:5]}")
        if self.head_seq != self.entries:
            found.append(f"log head at {self.head_seq}, {self.entries} leaves")
        if self.batch_problems:
            found.append(f"not one checkpoint per batch: {self.batch_problems[:5]}")
        if not self.verification.valid:
            found.append(f"verification failed: {self.verification.reason}")
        return found


def check_trail(url: str, answers: Sequence[Answer], *,
                checkpoint_files: Iterable[str | PathLike[str]] = ()) -> TrailCheck:
    receipts = {a.decision_id: a.seq for a in answers if a.status == 200 and a.decision_id}
    with psycopg.connect(libpq(url)) as conn:
        rows = conn.execute("SELECT seq, decision_id::text FROM audit_leaves ORDER BY seq").fetchall()
        stored = dict(conn.execute(
            "SELECT decision_id::text, seq FROM audit_leaves WHERE decision_id = ANY(%s::uuid[])",
            (list(receipts),),
        ).fetchall())
        head = conn.execute("SELECT size FROM audit_tlog_head").fetchone()
        batches = batch_problems(conn)
        checkpoints = int(conn.execute("SELECT count(*) FROM audit_tlog_checkpoints").fetchone()[0])  # type: ignore[index]
    seqs = Counter(seq for seq, _ in rows)
    ids = Counter(decision_id for _, decision_id in rows if decision_id is not None)
    top = max(seqs, default=0)
    store = AuditStore.from_url(url, pooled=False)
    try:
        verification = verify_whole(store, checkpoint_files=list(checkpoint_files))
    finally:
        store.dispose()
    return TrailCheck(
        entries=len(rows),
        head_seq=int(head[0]) if head else -1,
        missing_seqs=[s for s in range(1, top + 1) if s not in seqs],
        duplicate_seqs=sorted(s for s, n in seqs.items() if n > 1),
        duplicate_decision_ids=sorted(d for d, n in ids.items() if n > 1),
        answered=len(receipts),
        lost=sorted(d for d in receipts if d not in stored),
        wrong_seq=sorted((d, s, stored[d]) for d, s in receipts.items() if d in stored and stored[d] != s),
        unanswered_entries=len(rows) - len(stored),
        verification=verification,
        checkpoints=checkpoints,
        batch_problems=batches,
    )


# Per stored checkpoint, the leaves it adds to the previous one: a batch of the writer is
# recorded with one time (its checkpoint's) and signed by one key.
BATCHES_SQL = """
SELECT c.size, c.created_at = min(l.recorded_at) AND c.created_at = max(l.recorded_at),
       count(DISTINCT convert_from(l.body, 'UTF8')::jsonb ->> 'key_id'), count(l.seq),
       c.size - coalesce(lag(c.size) OVER (ORDER BY c.size), 0)
FROM audit_tlog_checkpoints c
JOIN audit_leaves l ON l.seq <= c.size
    AND l.seq > coalesce((SELECT max(p.size) FROM audit_tlog_checkpoints p WHERE p.size < c.size), 0)
GROUP BY c.size, c.created_at ORDER BY c.size
"""


def batch_problems(conn: psycopg.Connection[Any]) -> list[str]:
    """The checkpoint ranges that are not one batch, and a head no checkpoint is of."""
    found = []
    for size, one_time, signers, leaves, width in conn.execute(BATCHES_SQL).fetchall():
        if not one_time or signers != 1 or leaves != width:
            found.append(f"checkpoint {size}: {leaves} of {width} leaves, one time {one_time}, {signers} signers")
    row = conn.execute("SELECT h.size, (SELECT max(size) FROM audit_tlog_checkpoints) FROM audit_tlog_head h").fetchone()
    if row is not None and row[0] and row[0] != row[1]:
        found.append(f"head at {row[0]}, newest checkpoint {row[1]}")
    return found


def assert_trail_intact(check: TrailCheck, figures: Figures) -> None:
    figures.decisions_200 += check.answered
    figures.decisions_lost += len(check.lost)
    problems = check.problems()
    assert not problems, "; ".join(problems)
    assert check.verification.checked == check.entries
