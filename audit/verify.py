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

import functools
import multiprocessing
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from typing import Any

import orjson
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from ._db import map_errors
from .canonical import GENESIS_PREV_HASH, entry_hash, entry_signing_input, parse_time
from .chain import StoredEntry
from .checkpoints import SignedCheckpoint, StoredCheckpoint, read_checkpoint_file
from .entry import COLUMN_NAMES, queryable_columns
from .errors import CheckpointError
from .keys import Keyring
from .store import read_entries

__all__ = [
    "VerificationResult",
    "verify_chain",
    "verify_database",
    "verify_entries",
]

FetchEntries = Callable[[int, int | None], Iterable[StoredEntry]]
ParallelWalk = Callable[["_Walker", int, "int | None", "Progress | None"], None]
FetchCheckpoints = Callable[[int, int | None], Iterable[StoredCheckpoint]]
Progress = Callable[[int, int | None], None]
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "check": self.check,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "checkpoints_checked": self.checkpoints_checked,
        }


class _Failure(Exception):
    def __init__(self, seq: int, check: str, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.check = check
        self.reason = reason


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
    parallel: ParallelWalk | None = None,
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
    walker = _Walker(keyring=keyring, wanted=wanted, seen_hashes=seen_hashes)
    last = from_seq - 1
    try:
        # (1) Anchor.
        if from_seq > 1:
            anchor = _first(fetch_entries(from_seq - 1, from_seq - 1))
            if anchor is not None:
                _check_self_hash(anchor)
                walker.prev_hash, walker.prev_time = anchor.entry_hash, _body_time(anchor)
            elif anchored:
                raise _Failure(from_seq - 1, "missing", f"entry {from_seq - 1} is missing")
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
            raise _Failure(
                last + 1, "missing", f"entry {last + 1} is missing (range ends at {to_seq})"
            )
        # (10) Head.
        if head is not None and to_end:
            _check_head(head, last=last, last_hash=walker.prev_hash)
        # (11) Stored checkpoints in the range.
        for stored in stored_checkpoints:
            checkpoint = _parse_stored_checkpoint(stored)
            _check_checkpoint(
                checkpoint, keyring=keyring, log_id=log_id, last=last, to_end=to_end,
                seen_hashes=seen_hashes, fetch_entries=fetch_entries, where="stored checkpoint",
            )
        # (12) Outside checkpoints.
        for checkpoint in outside_checkpoints:
            _check_checkpoint(
                checkpoint, keyring=keyring, log_id=log_id, last=last, to_end=to_end,
                seen_hashes=seen_hashes, fetch_entries=fetch_entries, where="outside checkpoint",
            )
    except _Failure as failure:
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
            parallel = _ParallelWalk(
                conninfo=_conninfo(store), snapshot_id=row[0], keyring=trusted, workers=workers,
                end=end, open_end=to_seq is None,
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


class _Walker:
    """Per-entry checks (2)–(9), carrying the link state from one entry to the next."""

    def __init__(self, *, keyring: Keyring, wanted: set[int], seen_hashes: dict[int, bytes]):
        self.keyring = keyring
        self.wanted = wanted
        self.seen_hashes = seen_hashes
        self.expected = 1
        self.checked = 0
        self.prev_hash: bytes | None = GENESIS_PREV_HASH
        self.prev_time: datetime | None = None

    def check(self, entry: StoredEntry) -> None:
        seq = entry.seq
        # (2) Contiguity.
        if seq < self.expected:
            raise _Failure(seq, "duplicate", f"seq {seq} appears more than once")
        if seq > self.expected:
            raise _Failure(
                self.expected,
                "missing",
                f"entry {self.expected} is missing (the next stored entry is {seq})",
            )
        # (3) Body.
        try:
            body = orjson.loads(entry.body)
        except orjson.JSONDecodeError as exc:
            raise _Failure(seq, "body", f"entry {seq}: body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise _Failure(seq, "body", f"entry {seq}: body is not a JSON object")
        _expect(seq, "seq", "body seq", expected=seq, found=body.get("seq"))
        _expect(seq, "key_id", "body key_id", expected=entry.key_id, found=body.get("key_id"))
        _expect(
            seq, "prev_hash", "body prev_hash",
            expected=entry.prev_hash.hex(), found=body.get("prev_hash"),
        )
        # (4) Link.
        if self.prev_hash is not None and entry.prev_hash != self.prev_hash:
            raise _Failure(
                seq,
                "link",
                f"entry {seq}: prev_hash does not link to entry {seq - 1}: "
                f"expected {self.prev_hash.hex()}, found {entry.prev_hash.hex()}",
            )
        # (5) Hash.
        computed = entry_hash(entry.prev_hash, entry.body) if len(entry.prev_hash) == 32 else b""
        if computed != entry.entry_hash:
            raise _Failure(
                seq,
                "entry_hash",
                f"entry {seq}: entry_hash does not match SHA-256(prev_hash ‖ body): "
                f"computed {computed.hex()}, stored {entry.entry_hash.hex()}",
            )
        # (6) Key.
        key = self.keyring.get(entry.key_id)
        if key is None:
            rejected = self.keyring.rejected.get(entry.key_id)
            raise _Failure(
                seq,
                "unknown_key",
                f"entry {seq}: signed by unknown key {entry.key_id!r} "
                + (f"(its audit_signing_keys row was refused: {rejected})" if rejected
                   else f"(trusted: {sorted(self.keyring)})"),
            )
        # (7) Signature.
        if not key.verify(entry.signature, entry_signing_input(entry.entry_hash)):
            raise _Failure(
                seq, "signature", f"entry {seq}: signature does not verify with key {key.key_id!r}"
            )
        # (8) Columns.
        if entry.columns is not None:
            _check_columns(seq, body, entry.columns)
        # (9) Time.
        recorded_at = _parse_body_time(seq, body)
        if entry.recorded_at is not None and entry.recorded_at != recorded_at:
            raise _Failure(
                seq, "column", f"entry {seq}: recorded_at {entry.recorded_at} disagrees with the "
                f"signed body ({recorded_at})",
            )
        if self.prev_time is not None and recorded_at < self.prev_time:
            raise _Failure(
                seq, "time_order", f"entry {seq}: recorded_at {recorded_at} is before the "
                f"previous entry's {self.prev_time}",
            )
        if seq in self.wanted:
            self.seen_hashes[seq] = entry.entry_hash
        self.prev_hash, self.prev_time = entry.entry_hash, recorded_at
        self.expected += 1
        self.checked += 1


def _expect(seq: int, check: str, what: str, *, expected: Any, found: Any) -> None:
    if expected != found or type(expected) is not type(found):
        raise _Failure(seq, check, f"entry {seq}: {what} is {found!r}, expected {expected!r}")


def _check_columns(seq: int, body: dict[str, Any], columns: Any) -> None:
    derived = queryable_columns(body)
    for name in COLUMN_NAMES:
        stored = columns.get(name)
        want = derived[name]
        if isinstance(stored, memoryview):
            stored = bytes(stored)
        if isinstance(want, uuid.UUID) and isinstance(stored, str):
            stored = uuid.UUID(stored)
        if stored != want:
            raise _Failure(
                seq,
                "column",
                f"entry {seq}: column {name} is {stored!r} but the signed body says {want!r}",
            )


def _parse_body_time(seq: int, body: dict[str, Any]) -> datetime:
    try:
        return parse_time(body["recorded_at"])
    except (KeyError, TypeError, ValueError):
        raise _Failure(
            seq, "body", f"entry {seq}: body recorded_at {body.get('recorded_at')!r} is not RFC 3339"
        ) from None


def _body_time(entry: StoredEntry) -> datetime | None:
    try:
        return parse_time(orjson.loads(entry.body)["recorded_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _check_self_hash(entry: StoredEntry) -> None:
    if len(entry.prev_hash) != 32 or entry_hash(entry.prev_hash, entry.body) != entry.entry_hash:
        raise _Failure(
            entry.seq, "entry_hash", f"entry {entry.seq}: entry_hash does not match its body"
        )


def _check_head(head: Any, *, last: int, last_hash: bytes | None) -> None:
    if last < head.seq:
        raise _Failure(
            last + 1,
            "truncated",
            f"entries {last + 1}..{head.seq} are missing: the chain head says the log ends at "
            f"seq {head.seq}, but the last entry is {last}",
        )
    if last > head.seq:
        raise _Failure(
            head.seq + 1,
            "beyond_head",
            f"entries after the chain head: head is {head.seq}, last entry is {last}",
        )
    if head.seq > 0 and last_hash is not None and bytes(head.head_hash) != last_hash:
        raise _Failure(
            head.seq,
            "head",
            f"chain head hash {bytes(head.head_hash).hex()} is not entry {head.seq}'s "
            f"{last_hash.hex()}",
        )


def _parse_stored_checkpoint(stored: StoredCheckpoint) -> SignedCheckpoint:
    try:
        checkpoint = SignedCheckpoint.from_body(stored.body, stored.signature)
    except CheckpointError as exc:
        raise _Failure(stored.seq, "checkpoint", f"stored checkpoint {stored.seq}: {exc}") from None
    for name in ("seq", "head_hash", "recorded_at", "key_id"):
        column, signed = getattr(stored, name), getattr(checkpoint, name)
        if column != signed:
            raise _Failure(
                stored.seq,
                "checkpoint",
                f"stored checkpoint {stored.seq}: column {name} is {column!r} but the signed "
                f"body says {signed!r}",
            )
    return checkpoint


def _check_checkpoint(
    checkpoint: SignedCheckpoint,
    *,
    keyring: Keyring,
    log_id: str | None,
    last: int,
    to_end: bool,
    seen_hashes: dict[int, bytes],
    fetch_entries: FetchEntries,
    where: str,
) -> None:
    seq = checkpoint.seq
    problem = checkpoint.verify_signature(keyring)
    if problem is not None:
        raise _Failure(seq, "checkpoint", f"{where} {seq}: {problem}")
    if log_id is not None and checkpoint.log_id != log_id:
        raise _Failure(
            seq,
            "checkpoint",
            f"{where} {seq} is for log {checkpoint.log_id}, this log is {log_id}",
        )
    found = seen_hashes.get(seq)
    if found is None:
        if to_end and seq > last:
            raise _Failure(
                last + 1,
                "truncated",
                f"entries {last + 1}..{seq} are missing: the {where} signed "
                f"{checkpoint.recorded_at.isoformat()} attests seq {seq} with head "
                f"{checkpoint.head_hash.hex()}, but the log ends at seq {last} "
                "(the tail was truncated)",
            )
        entry = _first(fetch_entries(seq, seq))
        if entry is None:
            raise _Failure(seq, "missing", f"{where} {seq}: entry {seq} is missing")
        _check_self_hash(entry)
        found = entry.entry_hash
    if found != checkpoint.head_hash:
        raise _Failure(
            seq,
            "checkpoint",
            f"{where} {seq}: head hash {checkpoint.head_hash.hex()} differs from entry {seq}'s "
            f"{found.hex()}",
        )


def _first(items: Iterable[StoredEntry]) -> StoredEntry | None:
    for item in items:
        return item
    return None


# -- reading the database fast, and in several processes -------------------------------------

def _conninfo(store: Any) -> str:
    url = make_url(store.engine.url.render_as_string(hide_password=False))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class _ParallelWalk:
    """Steps (2)–(9) over ``from_seq..end`` in slices, by a pool of processes.

    Each slice is walked by a :class:`_Walker` in a worker that joins the coordinator's exported
    snapshot and starts from the stored hash and time of the entry before the slice (that entry
    is verified by the previous slice, whose failure, if any, comes first). Results are merged
    in seq order, so the first failure and ``checked`` are those of a sequential walk.
    """

    def __init__(self, *, conninfo: str, snapshot_id: str, keyring: Keyring, workers: int,
                 end: int, open_end: bool) -> None:
        self.conninfo, self.snapshot_id, self.workers = conninfo, snapshot_id, workers
        self.keys = [(k.key_id, k.raw) for k in keyring.values()]
        self.end, self.open_end = end, open_end

    def __call__(self, walker: _Walker, from_seq: int, to_seq: int | None,
                 progress: Progress | None) -> None:
        total = self.end - from_seq + 1
        size = max(1, min(SLICE_ENTRIES, -(-total // self.workers)))
        slices = [(lo, min(lo + size - 1, self.end)) for lo in range(from_seq, self.end + 1, size)]
        first_state = (walker.prev_hash, walker.prev_time)
        jobs = [
            dict(conninfo=self.conninfo, snapshot_id=self.snapshot_id, keys=self.keys,
                 wanted=sorted(walker.wanted), lo=lo, hi=hi,
                 open_end=self.open_end and hi == self.end,
                 start=first_state if i == 0 else None)
            for i, (lo, hi) in enumerate(slices)
        ]
        context = multiprocessing.get_context("spawn")  # never fork a threaded server process
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            try:
                for outcome in pool.map(_walk_slice, jobs):
                    walker.checked += outcome["checked"]
                    walker.seen_hashes.update(outcome["seen"])
                    if outcome["failure"] is not None:
                        raise _Failure(*outcome["failure"])
                    walker.prev_hash, walker.prev_time = outcome["last"]
                    walker.expected = outcome["expected"]
                    if progress is not None:
                        progress(walker.checked, total)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def _walk_slice(job: dict[str, Any]) -> dict[str, Any]:
    """In a worker process: walk entries ``lo..hi`` (``..end of log`` if ``open_end``)."""
    from .keys import PublicKey

    keyring = Keyring(PublicKey(key_id=k, raw=raw) for k, raw in job["keys"])
    seen: dict[int, bytes] = {}
    walker = _Walker(keyring=keyring, wanted=set(job["wanted"]), seen_hashes=seen)
    walker.expected = job["lo"]
    with psycopg.connect(job["conninfo"]) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(job["snapshot_id"])))
        read = functools.partial(read_entries, conn)
        try:
            if job["start"] is not None:
                walker.prev_hash, walker.prev_time = job["start"]
            else:  # the entry before the slice: verified by the previous slice
                before = _first(read(job["lo"] - 1, job["lo"] - 1))
                if before is None:
                    raise _Failure(job["lo"] - 1, "missing", f"entry {job['lo'] - 1} is missing")
                walker.prev_hash, walker.prev_time = before.entry_hash, _body_time(before)
            for entry in read(job["lo"], None if job["open_end"] else job["hi"]):
                walker.check(entry)
            if not job["open_end"] and walker.expected <= job["hi"]:
                raise _Failure(walker.expected, "missing", f"entry {walker.expected} is missing "
                               f"(range ends at {job['hi']})")
        except _Failure as failure:
            return {"checked": walker.checked, "seen": seen, "last": None, "expected": None,
                    "failure": (failure.seq, failure.check, failure.reason)}
    return {"checked": walker.checked, "seen": seen, "failure": None,
            "last": (walker.prev_hash, walker.prev_time), "expected": walker.expected}

