"""Verification of the audit chain over a seq range, against the database or an export.

:func:`verify_chain` reads only through injected fetch functions, so the same code checks the
database (:func:`verify_database`, inside one REPEATABLE READ snapshot) and an exported range
(:func:`verify_entries`, offline, with only the public keys).

Steps (marked ``# (n)`` in the code):

1. Anchor: for ``from_seq > 1`` the entry ``from_seq - 1`` must exist and hash correctly; its
   ``entry_hash`` is what entry ``from_seq`` must link to (seq 1 links to 32 zero bytes).
2. Contiguity: the entries come back ordered by seq; each must be the next seq — a gap names
   the missing seq, a repeated seq is a duplicate.
3. Body: the stored bytes parse as a JSON object whose ``seq``, ``key_id`` and ``prev_hash``
   agree with the row's.
4. Link: ``prev_hash`` equals the previous entry's ``entry_hash``.
5. Hash: ``SHA-256(prev_hash ‖ body)`` equals the stored ``entry_hash``.
6. Key: ``key_id`` is in the trusted keyring.
7. Signature: Ed25519 over ``b"clearance.audit.v1\\n" ‖ entry_hash`` verifies with that key.
8. Columns: every queryable column equals what the signed body says (database rows only; an
   export carries no derived columns). The body's JSONB is not stored (view
   ``audit_entries_json`` derives it from the signed bytes when read): nothing to compare.
9. Time: ``recorded_at`` never goes backwards along the chain.
10. Head: when the range runs to the end of the log, the chain-head row names the last entry
    (fewer rows than the head says: the tail was deleted).
11. Stored checkpoints in the range: signed by a trusted key, columns agree with the signed
    body, same log id, and the entry at the checkpoint's seq exists and has its ``head_hash``.
12. Outside checkpoints (files): as (11); a checkpoint beyond the end of the log proves that
    the tail was truncated.

The first failure ends verification; the result names its seq, the check and the reason with
the expected and the found values.

What cannot be detected: an attacker who can write the database (triggers disabled) and delete
the newest entries, rewind the chain head and delete the checkpoints of that tail leaves a
shorter chain that is internally valid. Only a checkpoint kept outside the database (12) reveals
it. Likewise re-signing a rewritten chain needs the private key; verify against a pinned
keyring (exported public keys) rather than the database's key table to rule out keys that an
attacker registered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

from ._checks import (
    FetchEntries,
    Failure,
    Progress,
    Walker,
    body_time,
    check_checkpoint,
    check_head,
    check_self_hash,
    first,
    parse_stored_checkpoint,
)
from ._db import map_errors
from ._parallel import ParallelWalk, conninfo
from .chain import StoredEntry
from .checkpoints import SignedCheckpoint, StoredCheckpoint, read_checkpoint_file
from .keys import Keyring

__all__ = [
    "Progress",
    "VerificationResult",
    "verify_chain",
    "verify_database",
    "verify_entries",
]

ParallelRun = Callable[[Walker, int, "int | None", "Progress | None"], None]
FetchCheckpoints = Callable[[int, int | None], Iterable[StoredCheckpoint]]
PROGRESS_EVERY = 1000
PARALLEL_MIN_ENTRIES = 20_000  # per worker: below that, starting processes costs more than it saves
SLICE_ENTRIES = 25_000  # a worker verifies a slice at a time (progress moves per slice)


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of a verification.

    ``checked`` counts the entries that passed every per-entry check; ``first_bad_seq``,
    ``check`` (a short code such as ``entry_hash``, ``missing``, ``truncated``) and ``reason``
    (a sentence with the expected and the found value) describe the first failure.
    """

    valid: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    check: str | None = None
    from_seq: int = 1
    to_seq: int | None = None
    checkpoints_checked: int = 0
    log: str = "v1"  # which log the seqs are of: the v1 chain or the v2 transparency log

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "valid": self.valid,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "check": self.check,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "checkpoints_checked": self.checkpoints_checked,
        }


def verify_chain(
    *,
    fetch_entries: FetchEntries,
    keyring: Keyring,
    from_seq: int = 1,
    to_seq: int | None = None,
    head: Any | None = None,
    fetch_checkpoints: FetchCheckpoints | None = None,
    outside_checkpoints: Sequence[SignedCheckpoint] = (),
    anchored: bool = True,
    progress: Progress | None = None,
    parallel: ParallelRun | None = None,
) -> VerificationResult:
    """Verify entries ``from_seq..to_seq`` (``to_seq=None``: to the end of the log).

    :param fetch_entries: ``(from_seq, to_seq|None) -> entries`` in (seq) order, duplicates kept.
    :param keyring: the public keys trusted to have signed entries and checkpoints.
    :param head: the chain-head state (``log_id``, ``seq``, ``head_hash``) when reading a
        database; ``None`` for an export.
    :param fetch_checkpoints: ``(from_seq, to_seq|None) -> stored checkpoints``, if any.
    :param outside_checkpoints: checkpoints kept outside the database (exported files).
    :param anchored: require entry ``from_seq - 1`` to link the first entry (database);
        ``False`` for an export that starts mid-log (its first ``prev_hash`` is taken as given,
        still covered by the signature).
    :param progress: called as ``progress(checked, total_or_None)`` every 1000 entries.
    :param parallel: runs steps (2)–(9) over the range in other processes instead of through
        ``fetch_entries`` (``verify_database(workers=n)``); it leaves ``walker`` as the
        sequential walk would, or raises the first failure by seq.
    """
    if from_seq < 1:
        raise ValueError("from_seq starts at 1")
    if to_seq is not None and to_seq < from_seq:
        raise ValueError("to_seq must not be below from_seq")
    if head is not None and to_seq is not None and to_seq > head.seq:
        to_seq = head.seq  # nothing exists beyond the head; (10) checks the end of the log
    to_end = to_seq is None or (head is not None and to_seq >= head.seq)
    total = (to_seq if to_seq is not None else head.seq if head is not None else None)
    total = None if total is None else max(0, total - from_seq + 1)
    log_id = str(head.log_id) if head is not None else None

    stored_checkpoints = (
        list(fetch_checkpoints(from_seq, to_seq)) if fetch_checkpoints is not None else []
    )
    wanted = {c.seq for c in stored_checkpoints} | {c.seq for c in outside_checkpoints}
    seen_hashes: dict[int, bytes] = {}
    walker = Walker(keyring=keyring, wanted=wanted, seen_hashes=seen_hashes)
    last = from_seq - 1
    try:
        # (1) Anchor.
        if from_seq > 1:
            anchor = first(fetch_entries(from_seq - 1, from_seq - 1))
            if anchor is not None:
                check_self_hash(anchor)
                walker.prev_hash, walker.prev_time = anchor.entry_hash, body_time(anchor)
            elif anchored:
                raise Failure(from_seq - 1, "missing", f"entry {from_seq - 1} is missing")
            else:
                walker.prev_hash = None
        walker.expected = from_seq
        if parallel is not None:
            parallel(walker, from_seq, to_seq, progress)
        else:
            for entry in fetch_entries(from_seq, to_seq):
                walker.check(entry)
                if progress is not None and walker.checked % PROGRESS_EVERY == 0:
                    progress(walker.checked, total)
        last = walker.expected - 1
        if to_seq is not None and last < to_seq:
            raise Failure(
                last + 1, "missing", f"entry {last + 1} is missing (range ends at {to_seq})"
            )
        # (10) Head.
        if head is not None and to_end:
            check_head(head, last=last, last_hash=walker.prev_hash)
        # (11) Stored checkpoints in the range.
        for stored in stored_checkpoints:
            checkpoint = parse_stored_checkpoint(stored)
            check_checkpoint(
                checkpoint, keyring=keyring, log_id=log_id, last=last, to_end=to_end,
                seen_hashes=seen_hashes, fetch_entries=fetch_entries, where="stored checkpoint",
            )
        # (12) Outside checkpoints.
        for checkpoint in outside_checkpoints:
            check_checkpoint(
                checkpoint, keyring=keyring, log_id=log_id, last=last, to_end=to_end,
                seen_hashes=seen_hashes, fetch_entries=fetch_entries, where="outside checkpoint",
            )
    except Failure as failure:
        return VerificationResult(
            valid=False,
            checked=walker.checked,
            first_bad_seq=failure.seq,
            reason=failure.reason,
            check=failure.check,
            from_seq=from_seq,
            to_seq=to_seq,
        )
    if progress is not None:
        progress(walker.checked, total)
    return VerificationResult(
        valid=True,
        checked=walker.checked,
        from_seq=from_seq,
        to_seq=last if last >= from_seq else to_seq,
        checkpoints_checked=len(stored_checkpoints) + len(outside_checkpoints),
    )


def verify_database(
    store: Any,
    *,
    from_seq: int = 1,
    to_seq: int | None = None,
    keyring: Keyring | None = None,
    checkpoint_files: Iterable[str | PathLike[str]] = (),
    progress: Progress | None = None,
    workers: int = 1,
) -> VerificationResult:
    """Verify the chain stored by ``store`` (an :class:`~audit.store.AuditStore`).

    :param keyring: trusted public keys; default the database's ``audit_signing_keys`` table.
        Pass an exported keyring (``Keyring.from_file``) not to trust the database for keys.
    :param checkpoint_files: checkpoints exported outside the database; they catch truncation.
    :param workers: processes that verify slices of a long range at once, each in the same
        exported snapshot (``pg_export_snapshot``); used for ranges of at least
        ``PARALLEL_MIN_ENTRIES`` per worker. The answer is the same as with one.
    Raises :class:`~audit.errors.CheckpointError` if a checkpoint file cannot be read and
    :class:`~audit.errors.AuditUnavailable` if the database cannot be read.
    """
    outside = [read_checkpoint_file(path) for path in checkpoint_files]
    with store.snapshot() as snapshot:
        conn = snapshot.connection
        head = snapshot.head()
        trusted = keyring if keyring is not None else snapshot.keyring()
        end = head.seq if to_seq is None else min(to_seq, head.seq)
        parallel = None
        if workers > 1 and end - from_seq + 1 >= PARALLEL_MIN_ENTRIES * workers:
            with map_errors("exporting the verification snapshot"):
                row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            parallel = ParallelWalk(
                conninfo=conninfo(store), snapshot_id=row[0], keyring=trusted, workers=workers,
                end=end, open_end=to_seq is None, slice_entries=SLICE_ENTRIES,
            )
        return verify_chain(
            fetch_entries=snapshot.fetch_entries,
            fetch_checkpoints=snapshot.fetch_checkpoints,
            keyring=trusted,
            head=head,
            from_seq=from_seq,
            to_seq=to_seq,
            outside_checkpoints=outside,
            progress=progress,
            parallel=parallel,
        )


def verify_entries(
    entries: Iterable[StoredEntry],
    *,
    keyring: Keyring,
    checkpoints: Sequence[SignedCheckpoint] = (),
    progress: Progress | None = None,
) -> VerificationResult:
    """Verify an exported range offline (entries in seq order, e.g. from a JSONL export).

    The first entry's ``prev_hash`` is taken as given (covered by its signature); checkpoints
    within the range are checked against it, and one beyond its end reports truncation.
    """
    items = list(entries)
    if not items:
        return VerificationResult(valid=True, checked=0)
    first = items[0].seq

    def fetch(lo: int, hi: int | None) -> Iterator[StoredEntry]:
        return (e for e in items if e.seq >= lo and (hi is None or e.seq <= hi))

    return verify_chain(
        fetch_entries=fetch,
        keyring=keyring,
        from_seq=first,
        outside_checkpoints=checkpoints,
        anchored=False,
        progress=progress,
    )
