"""Signed checkpoints: "the log had ``seq`` entries, ending in ``head_hash``, at this time".

A checkpoint body is a JSON object, canonicalised with RFC 8785 like entries::

    {"kind": "clearance.checkpoint", "log_id": "<uuid of this log>", "seq": 1234,
     "head_hash": "<hex entry_hash of entry seq>", "recorded_at": "<RFC 3339>",
     "key_id": "<signing key id>"}

``signature = Ed25519(b"clearance.checkpoint.v1\\n" ‖ canonical(body))``.

The writer stores one in ``audit_checkpoints`` every N entries or T seconds
(:class:`CheckpointPolicy`), in the same transaction as the batch that reached it, and can
export the newest to a file. **Keep exported checkpoints outside the database** (another host,
object storage with retention, a ticket): a checkpoint inside the database can be deleted
together with the tail it vouches for; one held elsewhere proves the log once reached ``seq``.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .canonical import canonical_bytes, checkpoint_signing_input, format_time, parse_time
from .errors import CheckpointError, CheckpointFileError
from .keys import Keyring, SigningKey

CHECKPOINT_KIND = "clearance.checkpoint"
FILE_FORMAT = "clearance.checkpoint.v1"

__all__ = [
    "CheckpointPolicy",
    "SignedCheckpoint",
    "StoredCheckpoint",
    "build_checkpoint",
    "read_checkpoint_file",
    "write_checkpoint_file",
]


@dataclass(frozen=True)
class CheckpointPolicy:
    """When the writer signs a checkpoint, and where it exports it.

    :param every_entries: sign a checkpoint once the head is this many entries past the last one.
    :param every_seconds: ...or once this much time has passed since the last one and the head
        has moved (also checked while the writer is idle).
    :param export_path: if set, the newest checkpoint is also written there (two slots, in place) after
        the transaction that stored it committed. Put it on storage the database's operators
        cannot rewrite, or ship it onwards.
    """

    every_entries: int = 1000
    every_seconds: float = 60.0
    export_path: Path | None = None

    def __post_init__(self) -> None:
        if self.every_entries < 1:
            raise ValueError("every_entries must be at least 1")
        if self.every_seconds <= 0:
            raise ValueError("every_seconds must be positive")

    def due(
        self, *, head_seq: int, last_seq: int, last_at: datetime | None, now: datetime
    ) -> bool:
        """Whether a checkpoint of ``head_seq`` should be signed now."""
        if head_seq <= last_seq:
            return False
        if head_seq - last_seq >= self.every_entries:
            return True
        return last_at is None or now - last_at >= timedelta(seconds=self.every_seconds)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with its exact signed body bytes."""

    log_id: str
    seq: int
    head_hash: bytes
    recorded_at: datetime
    key_id: str
    body: bytes
    signature: bytes

    @classmethod
    def from_body(cls, body: bytes, signature: bytes) -> SignedCheckpoint:
        """Parse a checkpoint from its signed bytes (the body is the only source of truth)."""
        try:
            doc = orjson.loads(body)
            if doc.get("kind") != CHECKPOINT_KIND:
                raise ValueError(f"kind is {doc.get('kind')!r}")
            if canonical_bytes(doc) != body:
                raise ValueError("body is not in canonical form")
            return cls(
                log_id=str(doc["log_id"]),
                seq=int(doc["seq"]),
                head_hash=bytes.fromhex(doc["head_hash"]),
                recorded_at=parse_time(doc["recorded_at"]),
                key_id=str(doc["key_id"]),
                body=body,
                signature=signature,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"malformed checkpoint body: {exc}") from exc

    def verify_signature(self, keyring: Keyring) -> str | None:
        """``None`` if the signature verifies with a key of ``keyring``, else the reason."""
        key = keyring.get(self.key_id)
        if key is None:
            return f"checkpoint signed by unknown key {self.key_id!r}"
        if not key.verify(self.signature, checkpoint_signing_input(self.body)):
            return f"checkpoint signature does not verify with key {self.key_id!r}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """File / API form: the canonical body text (exact signed bytes) and the signature."""
        return {
            "format": FILE_FORMAT,
            "body": self.body.decode("utf-8"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedCheckpoint:
        if data.get("format") != FILE_FORMAT:
            raise CheckpointError(f"not a Clearance checkpoint (format {data.get('format')!r})")
        try:
            body = str(data["body"]).encode("utf-8")
            signature = base64.b64decode(data["signature"], validate=True)
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from exc
        return cls.from_body(body, signature)


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint row as read from ``audit_checkpoints``: columns plus the signed bytes."""

    seq: int
    head_hash: bytes
    recorded_at: datetime
    key_id: str
    body: bytes
    signature: bytes


def build_checkpoint(
    *, log_id: str | uuid.UUID, seq: int, head_hash: bytes, recorded_at: datetime, key: SigningKey
) -> SignedCheckpoint:
    """Build and sign the checkpoint of a log whose entry ``seq`` has hash ``head_hash``."""
    doc = {
        "kind": CHECKPOINT_KIND,
        "log_id": str(log_id),
        "seq": seq,
        "head_hash": head_hash.hex(),
        "recorded_at": format_time(recorded_at),
        "key_id": key.key_id,
    }
    body = canonical_bytes(doc)
    return SignedCheckpoint(
        log_id=str(log_id),
        seq=seq,
        head_hash=head_hash,
        recorded_at=recorded_at,
        key_id=key.key_id,
        body=body,
        signature=key.sign(checkpoint_signing_input(body)),
    )


def write_checkpoint_file(path: str | os.PathLike[str], checkpoint: SignedCheckpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temp file, fsync, rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(checkpoint.to_dict(), handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)


def read_checkpoint_file(path: str | os.PathLike[str], *, keyring: Keyring | None = None) -> SignedCheckpoint:
    """Read a checkpoint written by :func:`write_checkpoint_file`; with ``keyring``, check its
    signature too. Raises :class:`~audit.errors.CheckpointFileError` naming the file and what is
    wrong with it (unreadable, not JSON, not a checkpoint, signature)."""

    def unusable(reason: str) -> CheckpointFileError:
        return CheckpointFileError(f"checkpoint file {path}: {reason}", path=str(path), reason=reason)

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise unusable(f"cannot be read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise unusable(f"is not a JSON document, truncated or damaged ({exc})") from exc
    if not isinstance(data, dict):
        raise unusable("does not hold a JSON object")
    try:
        checkpoint = SignedCheckpoint.from_dict(data)
    except CheckpointError as exc:
        raise unusable(str(exc)) from exc
    problem = checkpoint.verify_signature(keyring) if keyring is not None else None
    if problem is not None:
        raise unusable(problem)
    return checkpoint
