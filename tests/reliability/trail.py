"""The invariants every fault test ends with, read straight from the audit tables.

* every decision answered 200 is in the trail, at the seq its receipt named (no decision lost);
* seqs run 1..head without a gap or a repeat, and no decision id is recorded twice;
* the chain verifies (hashes, signatures, links, checkpoints — stored and exported).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike

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
            found.append(f"chain head at {self.head_seq}, {self.entries} entries")
        if not self.verification.valid:
            found.append(f"verification failed: {self.verification.reason}")
        return found


def check_trail(url: str, answers: Sequence[Answer], *,
                checkpoint_files: Iterable[str | PathLike[str]] = ()) -> TrailCheck:
    receipts = {a.decision_id: a.seq for a in answers if a.status == 200 and a.decision_id}
    with psycopg.connect(libpq(url)) as conn:
        rows = conn.execute("SELECT seq, decision_id::text FROM audit_entries ORDER BY seq").fetchall()
        stored = dict(conn.execute(
            "SELECT decision_id::text, seq FROM audit_entries WHERE decision_id = ANY(%s::uuid[])",
            (list(receipts),),
        ).fetchall())
        head = conn.execute("SELECT seq FROM audit_chain_head").fetchone()
    seqs = Counter(seq for seq, _ in rows)
    ids = Counter(decision_id for _, decision_id in rows)
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
    )


def assert_trail_intact(check: TrailCheck, figures: Figures) -> None:
    figures.decisions_200 += check.answered
    figures.decisions_lost += len(check.lost)
    problems = check.problems()
    assert not problems, "; ".join(problems)
    assert check.verification.checked == check.entries
