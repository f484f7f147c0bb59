"""TEST-ONLY: a tiny transparency log that issues receipts the way DESIGN's "Audit log v2"
describes them, built from parts this package did not write: the ``rfc8785`` package for the
canonical bytes, ``cryptography`` for Ed25519 signing, and RFC 6962 §2.1's recursive
definitions of the tree hash and the audit path (not the iterative fold the package uses).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two smaller than n
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def audit_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), leaf first."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return audit_path(m, leaves[:k]) + [mth(leaves[k:])]
    return audit_path(m - k, leaves[k:]) + [mth(leaves[:k])]


@dataclass
class NoteSigner:
    """An Ed25519 signed-note key (c2sp.org/signed-note), built with ``cryptography``."""

    name: str
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        return sha256(self.name.encode() + b"\n\x01" + self.public)[:4]

    @property
    def vkey(self) -> str:
        material = base64.b64encode(b"\x01" + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def signature_line(self, text: str) -> str:
        sig = self.private.sign(text.encode())
        return f"\u2014 {self.name} {base64.b64encode(self.key_id + sig).decode()}\n"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_note(text: str, *signers: NoteSigner) -> str:
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


def decision_json(*, allowed: list[dict[str, Any]] | None = None, denied: list[dict[str, Any]] | None = None,
                  decision_id: str | None = None) -> dict[str, Any]:
    allowed = allowed if allowed is not None else [
        {"model": "gemma-4-31b", "deployment": "self-hosted", "rank": 1, "price_per_mtok": 0.1,
         "provenance": "open_western", "obligations": ["attribution:Gemma is provided under the Gemma Terms"]},
        {"model": "gpt-5-mini", "deployment": "openai-api", "rank": 2, "price_per_mtok": 0.6875,
         "provenance": "gated_proprietary", "obligations": ["zero_data_retention"]},
    ]
    denied = denied if denied is not None else [
        {"model": "llama-4-maverick", "deployment": "together-api", "reasons": [
            {"code": "LICENCE_MAU_CAP", "message": "800000000 MAU exceeds the 700000000 cap"},
            {"code": "DATA_RESIDENCY", "message": "restricted data leaves the allowed regions"}]},
        {"model": "deepseek-v4", "deployment": "deepseek-api", "reasons": [
            {"code": "FOREIGN_HOSTED_API", "message": "CN-origin model through a CN-operated API"}]},
    ]
    return {
        "decision_id": decision_id or str(uuid.uuid4()),
        "outcome": "allow" if allowed else "deny",
        "allowed": allowed,
        "denied": denied,
        "policy_revision": "sha256:" + "ab" * 32,
    }


@dataclass
class TestLog:
    """Entries appended one by one; a receipt can be cut for any entry against the current tree."""

    __test__ = False  # not a pytest class

    origin: str = "clearance.test/log"
    signer: NoteSigner = field(default_factory=lambda: NoteSigner("clearance.test/log"))
    entries: list[dict[str, Any]] = field(default_factory=list)

    def append(self, decision: dict[str, Any], *, app_id: str = "claims-summariser") -> int:
        seq = len(self.entries) + 1
        result = {k: v for k, v in decision.items() if k not in ("decision_id", "audit")}
        self.entries.append({
            "seq": seq,
            "kind": "decision",
            "decision_id": decision["decision_id"],
            "recorded_at": f"2026-11-21T05:02:{seq % 60:02d}.000000Z",
            "app_id": app_id,
            "caller_key_id": "k_test",
            "input_sha256": hashlib.sha256(rfc8785.dumps({"app_id": app_id})).hexdigest(),
            "result_sha256": hashlib.sha256(rfc8785.dumps(result)).hexdigest(),
            "outcome": decision["outcome"],
            "policy_revision": decision["policy_revision"],
            "engine": "regorus",
        })
        return seq

    def leaves(self) -> list[bytes]:
        return [sha256(b"\x00" + rfc8785.dumps(e)) for e in self.entries]

    def checkpoint(self, *extra_signers: NoteSigner, size: int | None = None) -> str:
        leaves = self.leaves()[: size or len(self.entries)]
        return sign_note(checkpoint_text(self.origin, len(leaves), mth(leaves)), self.signer, *extra_signers)

    def receipt(self, seq: int) -> dict[str, Any]:
        leaves = self.leaves()
        entry = copy.deepcopy(self.entries[seq - 1])
        return {
            "seq": seq,
            "leaf_hash": leaves[seq - 1].hex(),
            "recorded_at": entry["recorded_at"],
            "entry": entry,
            "checkpoint": self.checkpoint(),
            "inclusion_proof": [h.hex() for h in audit_path(seq - 1, leaves)],
        }

    def decide(self, decision: dict[str, Any] | None = None, *, app_id: str = "claims-summariser",
               filler: int = 0) -> dict[str, Any]:
        """A decision with its receipt, after ``filler`` other decisions (so proofs are not trivial)."""
        for _ in range(filler):
            self.append(decision_json(), app_id="other-app")
        decision = decision or decision_json()
        seq = self.append(decision, app_id=app_id)
        return {**decision, "audit": self.receipt(seq)}
