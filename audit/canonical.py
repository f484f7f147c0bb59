"""The exact bytes that are hashed and signed, shared by the signer and the verifier.

Entry body bytes
    ``canonical(body)`` = RFC 8785 (JSON Canonicalization Scheme) of the body object, UTF-8,
    produced by the ``rfc8785`` package, or by ``orjson`` (sorted keys) for a value in the subset
    where orjson writes exactly those bytes (:func:`_orjson_subset`: object keys below U+E000,
    integers within ±(2^53 − 1), floats integral within that range, written as integers, or of
    magnitude in [1e-4, 1e15)), which is six to seven times faster on a decision's route lists
    (the pure-Python encoder costs ~0.5–0.9 ms there, more than evaluating the decision). No
    hand-written encoder: every byte comes from one of the two libraries, and
    tests/audit/test_canonical.py holds orjson's bytes to rfc8785's on random values (Hypothesis)
    and the value kinds at each edge of the subset.

Entry hash (32 bytes)
    ``SHA-256(prev_hash ‖ canonical(body))`` where ``prev_hash`` is the 32 raw bytes of the
    previous entry's hash (genesis: 32 zero bytes).

Entry signature (64 bytes)
    ``Ed25519(ENTRY_DOMAIN ‖ entry_hash)`` with ``ENTRY_DOMAIN = b"clearance.audit.v1\\n"``.

Checkpoint signature (64 bytes)
    ``Ed25519(CHECKPOINT_DOMAIN ‖ canonical(checkpoint_body))`` with
    ``CHECKPOINT_DOMAIN = b"clearance.checkpoint.v1\\n"``.

The two prefixes differ, so a signature over one kind of object can never be replayed as a
signature over the other.

Precomputed members
    A caller may hand over a member value already canonicalised (:class:`Canonical`, made by
    :func:`canonical`). RFC 8785 serialises an object as its members sorted by the UTF-16 code
    units of their names, each ``name:value`` with both parts canonical; :func:`canonical_object`
    writes exactly that from the members' canonical bytes, so the expensive part (the pure-Python
    encoder on a large ``input`` or ``result``) runs once, outside the chain lock, and can be
    reused for identical values. Every byte still comes from ``rfc8785``; a test checks the
    result equals ``rfc8785.dumps`` of the whole object. The bytes of member names and of small
    scalars (app ids, outcomes, revisions repeat across entries) are memoised for the same reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
import rfc8785

from .errors import AuditEntryInvalid

ENTRY_DOMAIN = b"clearance.audit.v1\n"
CHECKPOINT_DOMAIN = b"clearance.checkpoint.v1\n"
HASH_SIZE = 32
GENESIS_PREV_HASH = bytes(HASH_SIZE)

__all__ = [
    "CHECKPOINT_DOMAIN",
    "Canonical",
    "canonical",
    "canonical_object",
    "plain",
    "ENTRY_DOMAIN",
    "GENESIS_PREV_HASH",
    "canonical_bytes",
    "checkpoint_signing_input",
    "entry_hash",
    "entry_signing_input",
    "format_time",
    "parse_time",
]


@dataclass(frozen=True, slots=True)
class Canonical:
    """A JSON value together with its RFC 8785 bytes (see :func:`canonical`)."""

    value: Any
    data: bytes


def canonical(value: Any) -> Canonical:
    """Canonicalise ``value`` once, to be embedded as a member of an entry body."""
    return Canonical(value, canonical_bytes(value))


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value``; :class:`AuditEntryInvalid` if it is not JSON.

    An object whose member values are :class:`Canonical` is assembled from their bytes.
    """
    try:
        if type(value) in _SCALARS and (type(value) is not str or len(value) <= _CACHED_STR):
            return _scalar_bytes(type(value), value)
        if isinstance(value, Canonical):
            return value.data
        if isinstance(value, dict) and any(isinstance(v, Canonical) for v in value.values()):
            return canonical_object(value)
        fast = _by_orjson(value)
        return fast if fast is not None else rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, AttributeError) as exc:
        raise AuditEntryInvalid(f"entry is not canonicalisable JSON: {exc}") from exc


def canonical_object(members: dict[str, Any]) -> bytes:
    """RFC 8785 of an object whose member values may be :class:`Canonical` (section 3.2.3:
    members sorted by the UTF-16BE code units of their names)."""
    parts = []
    for name, encoded in _member_order(tuple(members)):
        value = members[name]
        data = value.data if isinstance(value, Canonical) else canonical_bytes(value)
        parts.append(encoded + data)
    return b"{" + b",".join(parts) + b"}"


def _by_orjson(value: Any) -> bytes | None:
    """RFC 8785 of ``value`` written by orjson, or ``None`` outside the subset where the two agree."""
    try:
        return orjson.dumps(_orjson_subset(value), option=orjson.OPT_SORT_KEYS)
    except (_OutsideSubset, orjson.JSONEncodeError):  # orjson refuses lone surrogates, among others
        return None


class _OutsideSubset(Exception):
    pass


_SAFE_INT = 2**53 - 1  # RFC 8785 numbers are IEEE doubles; rfc8785 refuses integers beyond


def _orjson_subset(value: Any) -> Any:
    r"""``value`` as orjson must be given it to write RFC 8785 (integral floats as integers), or
    :class:`_OutsideSubset`. Where the two agree: strings are escaped alike (``\"``, ``\\``, the
    short forms ``\b\t\n\f\r``, other control characters as ``\u00xx``, the rest as UTF-8);
    orjson sorts keys by code point, RFC 8785 by UTF-16 code unit, the same order unless a key
    holds a character from U+E000 up; a float of magnitude in [1e-4, 1e15) is written by both as
    its shortest round-trip decimal without an exponent; an integral float is an integer to RFC
    8785 (``30.0`` is ``30``, ``-0.0`` is ``0``)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -_SAFE_INT <= value <= _SAFE_INT:
            return value
        raise _OutsideSubset
    if kind is float:
        if value.is_integer():
            if -_SAFE_INT <= value <= _SAFE_INT:
                return int(value)
        elif 1e-4 <= abs(value) < 1e15:
            return value
        raise _OutsideSubset  # NaN, infinities, exponent forms: rfc8785 decides
    if kind is list:
        return [_orjson_subset(item) for item in value]
    if kind is dict:
        for key in value:
            if type(key) is not str or not (key.isascii() or max(key) < "\ue000"):
                raise _OutsideSubset
        return {key: _orjson_subset(item) for key, item in value.items()}
    raise _OutsideSubset


_SCALARS = frozenset({str, int, bool, type(None)})
_CACHED_STR = 128  # longer strings (free text from callers) are not worth keeping


@lru_cache(maxsize=4096)
def _scalar_bytes(kind: type, value: Any) -> bytes:
    # Keyed by type too: True == 1 == 1.0 share a hash but not a JSON form.
    return rfc8785.dumps(value)


@lru_cache(maxsize=256)
def _member_order(names: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    """The names in RFC 8785 order (UTF-16BE code units), each with its ``"name":`` bytes."""
    ordered = sorted(names, key=lambda n: n.encode("utf-16be"))
    return tuple((name, rfc8785.dumps(name) + b":") for name in ordered)


def plain(value: Any) -> Any:
    """``value`` with every :class:`Canonical` replaced by the value it stands for."""
    if isinstance(value, Canonical):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def entry_hash(prev_hash: bytes, body: bytes) -> bytes:
    """``SHA-256(prev_hash ‖ body)``: the 32-byte hash of one entry."""
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
    digest = hashlib.sha256(prev_hash)
    digest.update(body)
    return digest.digest()


def entry_signing_input(hash_: bytes) -> bytes:
    """The bytes an entry's Ed25519 signature covers: ``ENTRY_DOMAIN ‖ entry_hash``."""
    return ENTRY_DOMAIN + hash_


def checkpoint_signing_input(body: bytes) -> bytes:
    """The bytes a checkpoint's Ed25519 signature covers: ``CHECKPOINT_DOMAIN ‖ body``."""
    return CHECKPOINT_DOMAIN + body


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits: ``2025-11-21T01:34:00.123456Z``."""
    if moment.tzinfo is None:
        raise ValueError("timestamps in the audit trail must be timezone-aware")
    # isoformat, not strftime: glibc's %Y drops the leading zeros of years before 1000.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time` (accepts any RFC 3339 form ``fromisoformat`` reads)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment.astimezone(UTC)
