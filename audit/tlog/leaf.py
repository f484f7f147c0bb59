"""What a leaf is: the bytes of an entry body and the digests of its content-addressed blobs.

``leaf_hash = SHA-256(0x00 ‖ RFC 8785(entry body))``. The body carries ``input_sha256`` and
``result_sha256`` instead of the full input and result: each is the lowercase hex SHA-256 of
the RFC 8785 bytes of the blob. The result blob is the decision as returned to the caller
without ``audit`` (the receipt, which cannot be inside what it proves) and without
``decision_id`` (unique per decision; it stays in the body, so identical decisions share one
blob).

Every byte comes from :func:`audit.canonical.canonical_bytes` (RFC 8785: the ``rfc8785`` package,
or orjson where its bytes are the same).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from audit.canonical import canonical_bytes

from .merkle import leaf_hash

RESULT_EXCLUDED = ("audit", "decision_id")

__all__ = ["RESULT_EXCLUDED", "blob_sha256", "entry_bytes", "entry_leaf_hash", "result_blob", "result_sha256"]


def entry_bytes(entry: Mapping[str, Any]) -> bytes:
    """The RFC 8785 bytes of an entry body: what the leaf hash covers."""
    return canonical_bytes(dict(entry))


def entry_leaf_hash(entry: Mapping[str, Any]) -> bytes:
    """``SHA-256(0x00 ‖ RFC 8785(entry))``."""
    return leaf_hash(entry_bytes(entry))


def blob_sha256(value: Any) -> str:
    """Lowercase hex SHA-256 of the RFC 8785 bytes of ``value`` (an input or result blob)."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def result_blob(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The result blob of a decision: the decision without ``audit`` and ``decision_id``."""
    return {k: v for k, v in decision.items() if k not in RESULT_EXCLUDED}


def result_sha256(decision: Mapping[str, Any]) -> str:
    """The ``result_sha256`` an entry must carry for ``decision`` (as the caller received it)."""
    return blob_sha256(result_blob(decision))
