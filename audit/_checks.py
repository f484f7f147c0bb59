"""Verification steps (2)–(9) for one entry at a time, and the checks of the head and of
checkpoints (steps 10–12): what ``audit/verify.py`` runs, in order, over a range."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import orjson

from .canonical import GENESIS_PREV_HASH, entry_hash, entry_signing_input, parse_time
from .chain import StoredEntry
from .checkpoints import SignedCheckpoint, StoredCheckpoint
from .entry import COLUMN_NAMES, queryable_columns
from .errors import CheckpointError
from .keys import Keyring

FetchEntries = Callable[[int, int | None], Iterable[StoredEntry]]
Progress = Callable[[int, int | None], None]


class Failure(Exception):
    def __init__(self, seq: int, check: str, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.check = check
        self.reason = reason


class Walker:
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
            raise Failure(seq, "duplicate", f"seq {seq} appears more than once")
        if seq > self.expected:
            raise Failure(
                self.expected,
                "missing",
                f"entry {self.expected} is missing (the next stored entry is {seq})",
            )
        # (3) Body.
        try:
            body = orjson.loads(entry.body)
        except orjson.JSONDecodeError as exc:
            raise Failure(seq, "body", f"entry {seq}: body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise Failure(seq, "body", f"entry {seq}: body is not a JSON object")
        _expect(seq, "seq", "body seq", expected=seq, found=body.get("seq"))
        _expect(seq, "key_id", "body key_id", expected=entry.key_id, found=body.get("key_id"))
        _expect(
            seq, "prev_hash", "body prev_hash",
            expected=entry.prev_hash.hex(), found=body.get("prev_hash"),
        )
        # (4) Link.
        if self.prev_hash is not None and entry.prev_hash != self.prev_hash:
            raise Failure(
                seq,
                "link",
                f"entry {seq}: prev_hash does not link to entry {seq - 1}: "
                f"expected {self.prev_hash.hex()}, found {entry.prev_hash.hex()}",
            )
        # (5) Hash.
        computed = entry_hash(entry.prev_hash, entry.body) if len(entry.prev_hash) == 32 else b""
        if computed != entry.entry_hash:
            raise Failure(
                seq,
                "entry_hash",
                f"entry {seq}: entry_hash does not match SHA-256(prev_hash ‖ body): "
                f"computed {computed.hex()}, stored {entry.entry_hash.hex()}",
            )
        # (6) Key.
        key = self.keyring.get(entry.key_id)
        if key is None:
            rejected = self.keyring.rejected.get(entry.key_id)
            raise Failure(
                seq,
                "unknown_key",
                f"entry {seq}: signed by unknown key {entry.key_id!r} "
                + (f"(its audit_signing_keys row was refused: {rejected})" if rejected
                   else f"(trusted: {sorted(self.keyring)})"),
            )
        # (7) Signature.
        if not key.verify(entry.signature, entry_signing_input(entry.entry_hash)):
            raise Failure(
                seq, "signature", f"entry {seq}: signature does not verify with key {key.key_id!r}"
            )
        # (8) Columns.
        if entry.columns is not None:
            _check_columns(seq, body, entry.columns)
        # (9) Time.
        recorded_at = _parse_body_time(seq, body)
        if entry.recorded_at is not None and entry.recorded_at != recorded_at:
            raise Failure(
                seq, "column", f"entry {seq}: recorded_at {entry.recorded_at} disagrees with the "
                f"signed body ({recorded_at})",
            )
        if self.prev_time is not None and recorded_at < self.prev_time:
            raise Failure(
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
        raise Failure(seq, check, f"entry {seq}: {what} is {found!r}, expected {expected!r}")


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
            raise Failure(
                seq,
                "column",
                f"entry {seq}: column {name} is {stored!r} but the signed body says {want!r}",
            )


def _parse_body_time(seq: int, body: dict[str, Any]) -> datetime:
    try:
        return parse_time(body["recorded_at"])
    except (KeyError, TypeError, ValueError):
        raise Failure(
            seq, "body", f"entry {seq}: body recorded_at {body.get('recorded_at')!r} is not RFC 3339"
        ) from None


def body_time(entry: StoredEntry) -> datetime | None:
    try:
        return parse_time(orjson.loads(entry.body)["recorded_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def check_self_hash(entry: StoredEntry) -> None:
    if len(entry.prev_hash) != 32 or entry_hash(entry.prev_hash, entry.body) != entry.entry_hash:
        raise Failure(
            entry.seq, "entry_hash", f"entry {entry.seq}: entry_hash does not match its body"
        )


def check_head(head: Any, *, last: int, last_hash: bytes | None) -> None:
    if last < head.seq:
        raise Failure(
            last + 1,
            "truncated",
            f"entries {last + 1}..{head.seq} are missing: the chain head says the log ends at "
            f"seq {head.seq}, but the last entry is {last}",
        )
    if last > head.seq:
        raise Failure(
            head.seq + 1,
            "beyond_head",
            f"entries after the chain head: head is {head.seq}, last entry is {last}",
        )
    if head.seq > 0 and last_hash is not None and bytes(head.head_hash) != last_hash:
        raise Failure(
            head.seq,
            "head",
            f"chain head hash {bytes(head.head_hash).hex()} is not entry {head.seq}'s "
            f"{last_hash.hex()}",
        )


def parse_stored_checkpoint(stored: StoredCheckpoint) -> SignedCheckpoint:
    try:
        checkpoint = SignedCheckpoint.from_body(stored.body, stored.signature)
    except CheckpointError as exc:
        raise Failure(stored.seq, "checkpoint", f"stored checkpoint {stored.seq}: {exc}") from None
    for name in ("seq", "head_hash", "recorded_at", "key_id"):
        column, signed = getattr(stored, name), getattr(checkpoint, name)
        if column != signed:
            raise Failure(
                stored.seq,
                "checkpoint",
                f"stored checkpoint {stored.seq}: column {name} is {column!r} but the signed "
                f"body says {signed!r}",
            )
    return checkpoint


def check_checkpoint(
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
        raise Failure(seq, "checkpoint", f"{where} {seq}: {problem}")
    if log_id is not None and checkpoint.log_id != log_id:
        raise Failure(
            seq,
            "checkpoint",
            f"{where} {seq} is for log {checkpoint.log_id}, this log is {log_id}",
        )
    found = seen_hashes.get(seq)
    if found is None:
        if to_end and seq > last:
            raise Failure(
                last + 1,
                "truncated",
                f"entries {last + 1}..{seq} are missing: the {where} signed "
                f"{checkpoint.recorded_at.isoformat()} attests seq {seq} with head "
                f"{checkpoint.head_hash.hex()}, but the log ends at seq {last} "
                "(the tail was truncated)",
            )
        entry = first(fetch_entries(seq, seq))
        if entry is None:
            raise Failure(seq, "missing", f"{where} {seq}: entry {seq} is missing")
        check_self_hash(entry)
        found = entry.entry_hash
    if found != checkpoint.head_hash:
        raise Failure(
            seq,
            "checkpoint",
            f"{where} {seq}: head hash {checkpoint.head_hash.hex()} differs from entry {seq}'s "
            f"{found.hex()}",
        )


def first(items: Iterable[StoredEntry]) -> StoredEntry | None:
    for item in items:
        return item
    return None
