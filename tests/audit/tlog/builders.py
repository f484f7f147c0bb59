"""A small log kept in memory, to issue receipts and checkpoints as the service will."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from audit.tlog.checkpoint import Checkpoint, sign_checkpoint
from audit.tlog.leaf import blob_sha256, entry_leaf_hash, result_sha256
from audit.tlog.merkle import MemoryTree, inclusion_proof
from audit.tlog.note import Ed25519Signer


def decision(i: int) -> dict[str, Any]:
    """A decision as the API returns it (without its ``audit`` receipt)."""
    return {
        "decision_id": str(uuid.UUID(int=i + 1, version=4)),
        "outcome": "allow",
        "allowed": [{"model": "gemma-4-31b", "deployment": "self-hosted", "rank": 1, "price_per_mtok": 0.1,
                     "obligations": ["attribution:Gemma"]}],
        "denied": [{"model": "llama-4-maverick", "deployment": "together-api",
                    "reasons": [{"code": "LICENCE_MAU_CAP", "message": "800000000 MAU exceeds the cap"}]}],
        "policy_revision": "sha256:" + "ab" * 32,
    }


@dataclass
class MemoryLog:
    origin: str = "log.example/clearance"
    signer: Ed25519Signer = field(default_factory=lambda: Ed25519Signer.generate("log.example/clearance"))
    entries: list[dict[str, Any]] = field(default_factory=list)
    tree: MemoryTree = field(default_factory=MemoryTree)

    def record(self, result: dict[str, Any]) -> dict[str, Any]:
        seq = len(self.entries) + 1
        entry = {
            "seq": seq,
            "kind": "decision",
            "decision_id": result["decision_id"],
            "recorded_at": f"2025-11-21T01:34:{seq % 60:02d}.123456Z",
            "app_id": "support-bot",
            "caller_key_id": "k1",
            "input_sha256": blob_sha256({"workload": {"task": "chat"}}),
            "result_sha256": result_sha256(result),
            "outcome": result["outcome"],
            "policy_revision": result["policy_revision"],
            "engine": "regorus",
            "context": {},
        }
        self.entries.append(entry)
        self.tree.append(entry_leaf_hash(entry))
        return entry

    def checkpoint(self, size: int | None = None) -> str:
        size = self.tree.size if size is None else size
        return sign_checkpoint(Checkpoint(self.origin, size, self.tree.root(size)), [self.signer])

    def receipt(self, seq: int, *, size: int | None = None) -> dict[str, Any]:
        size = self.tree.size if size is None else size
        entry = self.entries[seq - 1]
        return {
            "seq": seq,
            "leaf_hash": entry_leaf_hash(entry).hex(),
            "recorded_at": entry["recorded_at"],
            "entry": entry,
            "checkpoint": self.checkpoint(size),
            "inclusion_proof": [h.hex() for h in inclusion_proof(self.tree, index=seq - 1, size=size)],
        }
