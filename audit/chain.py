"""Chaining and signing entries; the entry as stored and as exported.

The body's members are described in ``audit/entry.py``. Here the writer, while it holds the
chain head (``audit/store.py``), assigns the chain members ``seq``, ``recorded_at``, ``key_id``
and ``prev_hash``, canonicalises, hashes and signs.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from .canonical import (
    GENESIS_PREV_HASH,
    Canonical,
    canonical,
    canonical_bytes,
    plain,
    entry_hash,
    entry_signing_input,
    format_time,
    parse_time,
)
from .errors import AuditEntryInvalid
from .keys import SigningKey

__all__ = [
    "GENESIS_PREV_HASH",
    "Receipt",
    "SignedEntry",
    "StoredEntry",
    "build_entry",
    "encode_members",
]

_NUL_ESCAPE = b"\\u0000"


def encode_members(skeleton: Mapping[str, Any]) -> dict[str, Any]:
    """Canonicalise every member now (outside the chain lock); building the entry then only
    splices bytes. Raises :class:`AuditEntryInvalid` for a member that is not JSON."""
    return {k: v if isinstance(v, Canonical) else canonical(v) for k, v in skeleton.items()}


@dataclass(frozen=True)
class SignedEntry:
    """An entry built and signed by the writer, ready to insert."""

    seq: int
    recorded_at: datetime
    key_id: str
    prev_hash: bytes
    entry_hash: bytes
    signature: bytes
    body: bytes
    decision_id: str | None

    def receipt(self) -> Receipt:
        return Receipt(
            seq=self.seq,
            entry_hash=self.entry_hash.hex(),
            signature=base64.b64encode(self.signature).decode("ascii"),
            key_id=self.key_id,
            recorded_at=format_time(self.recorded_at),
            decision_id=self.decision_id,
        )


def build_entry(
    skeleton: Mapping[str, Any],
    *,
    seq: int,
    prev_hash: bytes,
    recorded_at: datetime,
    key: SigningKey,
) -> SignedEntry:
    """Assign the chain fields, canonicalise, hash and sign one entry.

    ``skeleton`` comes from :func:`audit.entry.prepare_fields`. Raises :class:`AuditEntryInvalid` when the
    body is not canonicalisable JSON or holds a NUL character (PostgreSQL JSONB cannot store it).
    """
    body = dict(skeleton)
    body["seq"] = seq
    body["recorded_at"] = format_time(recorded_at)
    body["key_id"] = key.key_id
    body["prev_hash"] = prev_hash.hex()
    data = canonical_bytes(body)
    if _NUL_ESCAPE in data:
        where = _nul_path(orjson.loads(data)) or "(body)"
        raise AuditEntryInvalid(
            f"entry field {where} contains a NUL character (\\u0000), which JSONB cannot store", field=where
        )
    hash_ = entry_hash(prev_hash, data)
    return SignedEntry(
        seq=seq,
        recorded_at=recorded_at,
        key_id=key.key_id,
        prev_hash=prev_hash,
        entry_hash=hash_,
        signature=key.sign(entry_signing_input(hash_)),
        body=data,
        decision_id=plain(skeleton.get("decision_id")),  # members may come canonicalised
    )


def _nul_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string or key holding U+0000 (keys in sorted order)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for name in sorted(value):
            here = f"{path}.{name}" if path else name
            found = here if "\x00" in name else _nul_path(value[name], here)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            if found := _nul_path(item, f"{path}[{i}]"):
                return found
    return None


@dataclass(frozen=True)
class Receipt:
    """What a caller gets once its entry has committed (the decision's ``audit`` field)."""

    seq: int
    entry_hash: str
    signature: str
    key_id: str
    recorded_at: str
    decision_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "signature": self.signature,
            "key_id": self.key_id,
            "recorded_at": self.recorded_at,
        }


@dataclass(frozen=True)
class StoredEntry:
    """An entry as read back for verification: from the database or from an export.

    ``columns`` holds the stored queryable columns when read from the database; ``None`` for
    an export, which carries only the signed material.
    """

    seq: int
    key_id: str
    prev_hash: bytes
    entry_hash: bytes
    signature: bytes
    body: bytes
    recorded_at: datetime | None = None
    columns: Mapping[str, Any] | None = None

    def to_export_dict(self) -> dict[str, Any]:
        """JSON form of one entry in an export (JSONL line); verifies offline."""
        return {
            "seq": self.seq,
            "recorded_at": format_time(self.recorded_at) if self.recorded_at else None,
            "key_id": self.key_id,
            "prev_hash": self.prev_hash.hex(),
            "entry_hash": self.entry_hash.hex(),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "body": self.body.decode("utf-8"),
        }

    @classmethod
    def from_export_dict(cls, data: Mapping[str, Any]) -> StoredEntry:
        """Inverse of :meth:`to_export_dict`; ``body`` is the canonical JSON text."""
        try:
            return cls(
                seq=int(data["seq"]),
                recorded_at=parse_time(data["recorded_at"]) if data.get("recorded_at") else None,
                key_id=str(data["key_id"]),
                prev_hash=bytes.fromhex(data["prev_hash"]),
                entry_hash=bytes.fromhex(data["entry_hash"]),
                signature=base64.b64decode(data["signature"]),
                body=str(data["body"]).encode("utf-8"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AuditEntryInvalid(f"malformed exported entry: {exc!r}") from exc
