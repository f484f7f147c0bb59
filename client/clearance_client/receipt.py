"""Offline verification of a decision's receipt against pinned verifier keys."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clearance_client._jcs import CanonicalizationError, canonical_bytes
from clearance_client._merkle import ProofError, leaf_hash, root_from_inclusion_proof
from clearance_client._note import Checkpoint, NoteError, SignedNote, VerifierKey, parse_verifier_keys
from clearance_client.errors import ReceiptError
from clearance_client.models import Decision

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class VerifiedReceipt:
    """What a verified receipt proves: the decision is leaf ``seq`` of the log ``origin``, whose
    tree of ``tree_size`` leaves has ``root_hash``, signed by ``signed_by``."""

    seq: int
    leaf_hash: str
    origin: str
    tree_size: int
    root_hash: str
    signed_by: tuple[str, ...]
    entry: Mapping[str, Any]


def verify_receipt(decision: Decision, trusted_keys: str | Iterable[str | VerifierKey], *,
                   app_id: str | None = None, origin: str | None = None) -> VerifiedReceipt:
    """Check, offline, that ``decision`` is recorded in Clearance's transparency log.

    ``trusted_keys`` are the log's verifier keys (``name+hexid+base64``), as a list or as the text
    of a keys file; only they are trusted, never a key that came with the receipt. Optionally
    ``app_id`` must be the entry's app and ``origin`` the checkpoint's origin line.

    Steps (each failure raises ReceiptError naming the step, with expected and found values):

    1. The receipt is present and well-formed: ``seq`` ≥ 1, ``leaf_hash`` (hex), ``recorded_at``,
       ``entry`` (object), ``checkpoint`` (text), ``inclusion_proof`` (hex hashes).
    2. The entry is this decision's: its ``seq`` and ``recorded_at`` are the receipt's, its
       ``decision_id`` the decision's (and its ``app_id`` the expected app, when given).
    3. The entry's ``result_sha256`` is SHA-256 of the RFC 8785 bytes of the decision's result:
       the decision as received, without ``decision_id`` and without ``audit``.
    4. The entry hashes to ``leaf_hash``: SHA-256(0x00 || RFC 8785 bytes of the entry).
    5. The checkpoint is a C2SP signed note with a valid Ed25519 signature by a trusted key
       (signatures by unknown keys are ignored; a trusted key's bad signature fails).
    6. The note text is a C2SP tlog checkpoint (origin, tree size, root hash), of the expected
       origin when given.
    7. The inclusion proof, folded per RFC 9162 §2.1.3.2 from ``leaf_hash`` at leaf index
       seq − 1 in a tree of the checkpoint's size, gives the checkpoint's root hash.
    """
    keys = parse_verifier_keys(trusted_keys)

    # (1) The receipt's shape.
    receipt = decision.audit
    if not isinstance(receipt, Mapping):
        raise ReceiptError("receipt", "the decision carries no receipt (its 'audit' member)",
                           expected="an object", found=receipt)
    seq = receipt.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ReceiptError("receipt.seq", "not an integer of at least 1", expected="seq >= 1", found=seq)
    claimed_leaf = receipt.get("leaf_hash")
    if not isinstance(claimed_leaf, str) or not _HEX64.fullmatch(claimed_leaf):
        raise ReceiptError("receipt.leaf_hash", "not 64 lowercase hex digits", found=claimed_leaf)
    recorded_at = receipt.get("recorded_at")
    if not isinstance(recorded_at, str):
        raise ReceiptError("receipt.recorded_at", "missing or not a string", found=recorded_at)
    entry = receipt.get("entry")
    if not isinstance(entry, Mapping):
        raise ReceiptError("receipt.entry", "missing or not an object", found=type(entry).__name__)
    note_text = receipt.get("checkpoint")
    if not isinstance(note_text, str):
        raise ReceiptError("receipt.checkpoint", "missing or not a string", found=type(note_text).__name__)
    proof_hex = receipt.get("inclusion_proof")
    if not isinstance(proof_hex, list) or not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in proof_hex):
        raise ReceiptError("receipt.inclusion_proof", "not an array of 64-hex-digit hashes", found=proof_hex)

    # (2) The entry belongs to this decision.
    _same("entry.seq", "the entry's seq is not the receipt's", expected=seq, found=entry.get("seq"))
    if "recorded_at" in entry:
        _same("entry.recorded_at", "the entry's recorded_at is not the receipt's",
              expected=recorded_at, found=entry.get("recorded_at"))
    _same("entry.decision_id", "the entry records another decision",
          expected=decision.decision_id, found=entry.get("decision_id"))
    if app_id is not None:
        _same("entry.app_id", "the entry records another app", expected=app_id, found=entry.get("app_id"))

    # (3) The entry's result hash is the hash of the result received.
    try:
        result_sha = hashlib.sha256(canonical_bytes(decision.result())).hexdigest()
    except CanonicalizationError as exc:
        raise ReceiptError("entry.result_sha256", f"the decision's result has no RFC 8785 form: {exc}") from exc
    _same("entry.result_sha256", "the entry's result hash is not the hash of the decision received",
          expected=result_sha, found=entry.get("result_sha256"))

    # (4) The entry hashes to the leaf hash.
    try:
        entry_bytes = canonical_bytes(entry)
    except CanonicalizationError as exc:
        raise ReceiptError("leaf_hash", f"the entry has no RFC 8785 form: {exc}") from exc
    computed_leaf = leaf_hash(entry_bytes)
    _same("leaf_hash", "SHA-256(0x00 || entry) is not the receipt's leaf hash",
          expected=computed_leaf.hex(), found=claimed_leaf)

    # (5) The checkpoint is signed by a trusted key.
    try:
        note = SignedNote.parse(note_text)
        signers = note.verified_by(keys)
    except NoteError as exc:
        raise ReceiptError("checkpoint.signature", str(exc)) from exc
    if not signers:
        raise ReceiptError("checkpoint.signature", "no signature by a trusted key",
                           expected=sorted(f"{k.name} {k.key_id.hex()}" for k in keys),
                           found=sorted(f"{s.name} {s.key_id.hex()}" for s in note.signatures))

    # (6) The signed text is a checkpoint.
    try:
        checkpoint = Checkpoint.parse(note.text)
    except NoteError as exc:
        raise ReceiptError("checkpoint.body", str(exc)) from exc
    if origin is not None:
        _same("checkpoint.origin", "the checkpoint is from another log", expected=origin, found=checkpoint.origin)

    # (7) The inclusion proof folds to the checkpoint's root at leaf index seq - 1.
    proof = [bytes.fromhex(h) for h in proof_hex]
    try:
        root = root_from_inclusion_proof(leaf_index=seq - 1, tree_size=checkpoint.tree_size,
                                         leaf=computed_leaf, proof=proof)
    except ProofError as exc:
        raise ReceiptError("inclusion_proof", str(exc), expected=f"leaf index {seq - 1} < tree size",
                           found=f"tree size {checkpoint.tree_size}, {len(proof)} hashes") from exc
    _same("inclusion_proof", f"the proof does not fold to the checkpoint's root at leaf index {seq - 1}",
          expected=base64.b64encode(checkpoint.root_hash).decode(), found=base64.b64encode(root).decode())

    return VerifiedReceipt(seq=seq, leaf_hash=claimed_leaf, origin=checkpoint.origin,
                           tree_size=checkpoint.tree_size, root_hash=checkpoint.root_hash.hex(),
                           signed_by=tuple(k.name for k in signers), entry=entry)


def _same(check: str, message: str, *, expected: Any, found: Any) -> None:
    if type(expected) is not type(found) or expected != found:
        raise ReceiptError(check, message, expected=expected, found=found)
