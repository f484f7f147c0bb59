"""The audit trail as a transparency log: formats, proofs and the witness core.

Pure Python (``cryptography``, ``rfc8785``, ``pydantic``): no database, no HTTP. The storage
that serves proofs plugs in through :class:`~audit.tlog.merkle.HashReader`.

=================  ==========================================================================
``merkle``         RFC 6962/9162 hashing, proof plans and generation, verification, frontier
``note``           C2SP signed-note: Ed25519 signers/verifiers, key strings, ``open_note``
``checkpoint``     C2SP tlog-checkpoint body, ``open_checkpoint`` → ``SignedCheckpoint``
``cosignature``    C2SP tlog-cosignature ``cosignature/v1`` (type 0x04)
``tiles``          C2SP tlog-tiles paths, tiles from a hash reader, hashes from tiles
``leaf``           entry body bytes, leaf hash, blob digests (``result_sha256``)
``receipt``        the decision's receipt and ``verify_receipt``
``proof``          C2SP tlog-proof: one entry's offline proof (for ``audit prove`` and packs)
``witness``        C2SP tlog-witness state machine (``add-checkpoint``) and its state directory
=================  ==========================================================================

The formats are described in ``docs/transparency-log.md``.
"""

from __future__ import annotations

from .checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, sign_checkpoint
from .cosignature import CosignatureSigner, CosignatureVerifier, load_signer, load_verifier, verified_cosignatures
from .errors import (
    ConsistencyProofError,
    InclusionProofError,
    NoteVerificationError,
    ProofRequestError,
    ReceiptVerificationError,
    TlogError,
    TlogFormatError,
    VerificationError,
)
from .merkle import (
    EMPTY_ROOT,
    Frontier,
    HashReader,
    MemoryTree,
    Node,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from .note import Ed25519Signer, Ed25519Verifier, open_note, sign_note
from .proof import TlogProof, parse_tlog_proof, verify_tlog_proof
from .receipt import Receipt, verify_receipt

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "ConsistencyProofError",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Ed25519Signer",
    "Ed25519Verifier",
    "Frontier",
    "HashReader",
    "InclusionProofError",
    "MemoryTree",
    "Node",
    "NoteVerificationError",
    "ProofRequestError",
    "Receipt",
    "ReceiptVerificationError",
    "SignedCheckpoint",
    "TlogError",
    "TlogFormatError",
    "TlogProof",
    "VerificationError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "load_signer",
    "load_verifier",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_tlog_proof",
    "root_hash",
    "sign_checkpoint",
    "sign_note",
    "verified_cosignatures",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
    "verify_tlog_proof",
]
