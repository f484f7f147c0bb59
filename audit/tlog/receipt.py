"""The receipt a decision carries in its ``audit`` field, and its offline verification.

::

    {"seq": 1234,                                  1-based; leaf index = seq - 1
     "leaf_hash": "<hex SHA-256(0x00 ‖ RFC 8785(entry))>",
     "recorded_at": "2025-11-21T01:34:00.123456Z",
     "entry": {…},                                 the leaf body as JSON
     "checkpoint": "<origin>\\n<size>\\n<root>\\n\\n— <key> <sig>\\n",   the signed note
     "inclusion_proof": ["<hex>", …]}              RFC 9162 order: leaf's sibling first

:func:`verify_receipt` needs only the receipt, the log's pinned verifier key(s) and, optionally,
the decision the app received. No network, no database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from audit.errors import AuditEntryInvalid

from .checkpoint import SignedCheckpoint, open_checkpoint
from .cosignature import verified_cosignatures
from .errors import ReceiptVerificationError, TlogError
from .leaf import entry_leaf_hash, result_sha256
from .merkle import root_from_inclusion_proof
from .note import Ed25519Verifier, Verifier

__all__ = ["Receipt", "verify_receipt"]

HexHash = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]


class Receipt(BaseModel):
    """Proof that one entry is in the log: the entry, its leaf hash, a checkpoint, the path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: StrictInt = Field(ge=1, le=2**63 - 1)
    leaf_hash: HexHash
    recorded_at: StrictStr
    entry: dict[str, Any]
    checkpoint: StrictStr
    inclusion_proof: tuple[HexHash, ...] = Field(max_length=64)


def verify_receipt(
    receipt: Receipt | Mapping[str, Any],
    *,
    trusted_keys: Sequence[str | Verifier],
    decision: Mapping[str, Any] | None = None,
    origin: str | None = None,
    witnesses: Sequence[Verifier] = (),
    min_cosignatures: int = 0,
) -> SignedCheckpoint:
    """Check offline that ``receipt`` proves its entry is in the log; return its checkpoint.

    ``trusted_keys``: the log's pinned verifier keys (``name+hash+base64`` strings or
    verifiers); ``decision``: the decision the app received (with or without its ``audit``);
    ``origin``: the log's origin, when the app pins it too; ``witnesses`` and
    ``min_cosignatures``: require that many valid witness cosignatures on the checkpoint.

    Steps (each failure raises :class:`ReceiptVerificationError` naming its step):

    1. The entry hashes to ``leaf_hash`` (SHA-256 of 0x00 and its RFC 8785 bytes), and its
       ``seq`` and ``recorded_at`` are the receipt's.
    2. If ``decision`` is given: the entry's ``decision_id`` is the decision's, and its
       ``result_sha256`` is the hex SHA-256 of the RFC 8785 bytes of the decision without
       ``audit`` and ``decision_id``.
    3. The checkpoint note verifies with a pinned key (and is for ``origin``, if given).
    4. The inclusion proof folds ``leaf_hash`` at index ``seq - 1`` to the checkpoint's root,
       in the tree of the checkpoint's size (RFC 9162 §2.1.3.2).
    5. If ``min_cosignatures``: at least that many ``witnesses`` cosigned the checkpoint.
    """
    try:
        receipt = receipt if isinstance(receipt, Receipt) else Receipt.model_validate(receipt)
    except ValueError as exc:
        raise ReceiptVerificationError(0, "receipt is well-formed", detail=str(exc)) from exc
    entry = receipt.entry
    claimed = bytes.fromhex(receipt.leaf_hash)

    # (1): the entry hashes to leaf_hash, and the receipt's seq and time are the entry's.
    try:
        computed = entry_leaf_hash(entry)
    except AuditEntryInvalid as exc:
        raise ReceiptVerificationError(1, "entry is canonicalisable JSON", detail=str(exc)) from exc
    if computed != claimed:
        raise ReceiptVerificationError(1, "leaf hash of the entry", expected=claimed, found=computed)
    if type(entry.get("seq")) is not int or entry["seq"] != receipt.seq:
        raise ReceiptVerificationError(1, "entry seq is the receipt's", expected=receipt.seq, found=entry.get("seq"))
    if entry.get("recorded_at") != receipt.recorded_at:
        raise ReceiptVerificationError(1, "entry recorded_at is the receipt's", expected=receipt.recorded_at,
                                       found=entry.get("recorded_at"))

    # (2): the entry records this decision.
    if decision is not None:
        if entry.get("decision_id") != decision.get("decision_id"):
            raise ReceiptVerificationError(2, "entry decision_id is the decision's",
                                           expected=decision.get("decision_id"), found=entry.get("decision_id"))
        try:
            digest = result_sha256(decision)
        except AuditEntryInvalid as exc:
            raise ReceiptVerificationError(2, "decision is canonicalisable JSON", detail=str(exc)) from exc
        if entry.get("result_sha256") != digest:
            raise ReceiptVerificationError(2, "entry result_sha256 is the SHA-256 of the decision's result",
                                           expected=digest, found=entry.get("result_sha256"))

    # (3): the checkpoint is signed by a pinned key; only then are its size and root used.
    try:
        log_verifiers = [Ed25519Verifier.from_key(k) if isinstance(k, str) else k for k in trusted_keys]
    except TlogError as exc:
        raise ReceiptVerificationError(3, "pinned log keys are Ed25519 verifier keys", detail=str(exc)) from exc
    if not log_verifiers:
        raise ReceiptVerificationError(3, "at least one pinned log key is given")
    try:
        signed = open_checkpoint(receipt.checkpoint, log_verifiers, origin=origin)
    except TlogError as exc:
        raise ReceiptVerificationError(3, "checkpoint note verifies with a pinned key", detail=str(exc)) from exc

    # (4): the proof folds the leaf at index seq - 1 to the checkpoint's root.
    if receipt.seq > signed.size:
        raise ReceiptVerificationError(4, "seq is within the checkpoint's tree", expected=f"<= {signed.size}",
                                       found=receipt.seq)
    try:
        root = root_from_inclusion_proof(leaf_hash=claimed, index=receipt.seq - 1, size=signed.size,
                                         proof=[bytes.fromhex(h) for h in receipt.inclusion_proof])
    except TlogError as exc:
        raise ReceiptVerificationError(4, "inclusion proof", detail=str(exc)) from exc
    if root != signed.root_hash:
        raise ReceiptVerificationError(4, "root computed from the inclusion proof is the checkpoint's root",
                                       expected=signed.root_hash, found=root)

    # (5): enough witnesses cosigned this checkpoint.
    if min_cosignatures:
        try:
            cosigned = verified_cosignatures(receipt.checkpoint, witnesses)
        except TlogError as exc:
            raise ReceiptVerificationError(5, "witness cosignatures verify", detail=str(exc)) from exc
        if len(cosigned) < min_cosignatures:
            raise ReceiptVerificationError(5, "valid witness cosignatures", expected=f">= {min_cosignatures}",
                                           found=len(cosigned))
    return signed
