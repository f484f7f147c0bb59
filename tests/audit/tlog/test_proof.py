"""C2SP tlog-proof: the spec's example, a round trip, and a proof cut, moved or re-signed."""

from __future__ import annotations

import pytest

from audit.tlog.cosignature import CosignatureSigner, cosignature_line
from audit.tlog.errors import InclusionProofError, NoteVerificationError, TlogFormatError
from audit.tlog.leaf import entry_leaf_hash
from audit.tlog.merkle import inclusion_proof
from audit.tlog.note import Ed25519Signer, parse_note
from audit.tlog.proof import TlogProof, parse_tlog_proof, verify_tlog_proof

from . import c2sp_vectors as c2sp
from .builders import MemoryLog, decision


def test_the_spec_example_parses() -> None:
    proof = parse_tlog_proof(c2sp.TLOG_PROOF)
    assert proof.index == 73894 and len(proof.inclusion_proof) == 5
    assert proof.extra is not None and proof.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert proof.checkpoint.startswith("example.com/fancylog\n109482\n")
    assert proof.format() == c2sp.TLOG_PROOF


@pytest.fixture(scope="module")
def log() -> MemoryLog:
    memory_log = MemoryLog()
    for i in range(21):
        memory_log.record(decision(i))
    return memory_log


def _proof(log: MemoryLog, seq: int, *, checkpoint: str | None = None) -> TlogProof:
    return TlogProof(seq - 1, tuple(inclusion_proof(log.tree, index=seq - 1, size=log.tree.size)),
                     checkpoint or log.checkpoint())


def test_a_proof_verifies_offline_with_pinned_keys(log: MemoryLog) -> None:
    witness = CosignatureSigner.generate("w.example")
    note = log.checkpoint()
    cosigned = note + cosignature_line(witness, parse_note(note).text)
    text = _proof(log, 17, checkpoint=cosigned).format()
    signed = verify_tlog_proof(text, leaf_hash=entry_leaf_hash(log.entries[16]), log_verifiers=[log.signer.verifier()],
                               origin=log.origin, witnesses=[witness.verifier()], min_cosignatures=1)
    assert signed.size == 21
    with pytest.raises(NoteVerificationError, match="witness cosignatures"):
        verify_tlog_proof(_proof(log, 17), leaf_hash=entry_leaf_hash(log.entries[16]),
                          log_verifiers=[log.signer.verifier()], witnesses=[witness.verifier()], min_cosignatures=1)


def test_another_entry_or_index_or_key_fails(log: MemoryLog) -> None:
    proof = _proof(log, 5)
    leaf = entry_leaf_hash(log.entries[4])
    with pytest.raises(InclusionProofError):
        verify_tlog_proof(proof, leaf_hash=entry_leaf_hash(log.entries[5]), log_verifiers=[log.signer.verifier()])
    with pytest.raises(InclusionProofError):
        verify_tlog_proof(TlogProof(5, proof.inclusion_proof, proof.checkpoint), leaf_hash=leaf,
                          log_verifiers=[log.signer.verifier()])
    with pytest.raises(InclusionProofError, match="leaf index < tree size"):
        verify_tlog_proof(TlogProof(99, proof.inclusion_proof, proof.checkpoint), leaf_hash=leaf,
                          log_verifiers=[log.signer.verifier()])
    with pytest.raises(NoteVerificationError):
        verify_tlog_proof(proof, leaf_hash=leaf, log_verifiers=[Ed25519Signer.generate(log.origin).verifier()])


@pytest.mark.parametrize(("text", "reason"), [
    ("c2sp.org/tlog-proof@v2\nindex 1\n\nx", "line 1"),
    ("c2sp.org/tlog-proof@v1\nindex 01\n\nx", "index"),
    ("c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\nx", "extra"),
    ("c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\nx", "line 3"),
    ("c2sp.org/tlog-proof@v1\nindex 1\n", "no empty line"),
])
def test_malformed_proofs(text: str, reason: str) -> None:
    with pytest.raises(TlogFormatError, match=reason):
        parse_tlog_proof(text)
