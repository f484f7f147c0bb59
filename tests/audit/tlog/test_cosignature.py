"""C2SP tlog-cosignature (cosignature/v1): the spec's examples, signing and verification."""

from __future__ import annotations

import base64

import pytest

from audit.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from audit.tlog.cosignature import (
    ALG_COSIGNATURE_V1,
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_line,
    cosigned_message,
    load_signer,
    load_verifier,
    parse_cosignature,
    verified_cosignatures,
)
from audit.tlog.errors import NoteVerificationError, TlogFormatError
from audit.tlog.note import (
    Ed25519Signer,
    Ed25519Verifier,
    NoteSignature,
    key_id,
    open_note,
    parse_note,
    parse_verifier_key,
)

from . import c2sp_vectors as c2sp


def test_the_spec_example_cosignature_line_decodes_to_the_spec_timestamp() -> None:
    note = parse_note(c2sp.COSIGNED_CHECKPOINT_NOTE)
    log_signature, witness_signature = note.signatures
    cosignature = parse_cosignature(witness_signature)
    assert cosignature.name == "witness.example.com/w1"
    assert cosignature.timestamp == c2sp.COSIGNED_MESSAGE_TIMESTAMP  # the "time" line of the spec's message
    assert len(cosignature.signature) == 64 and cosignature.key_id.hex() == "8d66cf3f"
    assert cosignature.line() == witness_signature.line()
    assert len(log_signature.signature) == 64  # the log's own line is a plain Ed25519 note signature


def test_the_signed_message_is_the_spec_example_byte_for_byte() -> None:
    body = parse_note(c2sp.CHECKPOINT_NOTE).text.encode()
    assert cosigned_message(body, c2sp.COSIGNED_MESSAGE_TIMESTAMP) == c2sp.COSIGNED_MESSAGE.encode()
    with pytest.raises(ValueError):
        cosigned_message(body, 0)


def test_cosign_and_verify_through_note_verification() -> None:
    log_key = Ed25519Signer.generate("log.example")
    witness = CosignatureSigner.generate("witness.example/w1", clock=lambda: 1_700_000_000.7)
    note = sign_checkpoint(Checkpoint("log.example", 3, bytes(32)), [log_key])
    cosigned = note + cosignature_line(witness, parse_note(note).text)
    opened = open_note(cosigned, [log_key.verifier(), witness.verifier()])
    assert opened.signer_names == ("log.example", "witness.example/w1")
    [found] = verified_cosignatures(cosigned, [witness.verifier()])
    assert found.timestamp == 1_700_000_000
    # The log's verification alone ignores the witness line; a checkpoint still needs the log key.
    assert open_checkpoint(cosigned, [log_key.verifier()]).signers == ("log.example",)
    with pytest.raises(NoteVerificationError):
        open_checkpoint(note, [witness.verifier()])


def test_the_key_id_of_a_cosigner_uses_type_0x04() -> None:
    witness = CosignatureSigner.generate("w.example")
    assert witness.key_id == key_id("w.example", 0x04, witness.public_key)
    assert witness.key_id != key_id("w.example", 0x01, witness.public_key)
    parsed = parse_verifier_key(witness.verifier_key)
    assert (parsed.alg, parsed.public_key) == (ALG_COSIGNATURE_V1, witness.public_key)
    assert isinstance(load_verifier(witness.verifier_key), CosignatureVerifier)
    assert isinstance(load_verifier(Ed25519Signer.generate("l.example").verifier_key), Ed25519Verifier)
    loaded = load_signer(witness.signer_key)
    assert isinstance(loaded, CosignatureSigner) and loaded.verifier_key == witness.verifier_key


def test_a_changed_timestamp_or_body_breaks_the_cosignature() -> None:
    witness = CosignatureSigner.generate("w.example")
    body = Checkpoint("log.example", 9, bytes(32)).body()
    raw = witness.sign_at(body.encode(), 1234)
    verifier = witness.verifier()
    assert verifier.verify(body.encode(), raw)
    later = (1235).to_bytes(8, "big") + raw[8:]
    assert not verifier.verify(body.encode(), later)
    assert not verifier.verify(Checkpoint("log.example", 10, bytes(32)).body().encode(), raw)
    assert not verifier.verify(body.encode(), bytes(8) + raw[8:])  # timestamp 0 is never valid
    assert not verifier.verify(body.encode(), raw[:-1])


def test_a_forged_cosignature_by_a_trusted_witness_is_an_error_not_a_skip() -> None:
    witness = CosignatureSigner.generate("w.example")
    other = CosignatureSigner.generate("other.example")
    body = Checkpoint("log.example", 9, bytes(32)).body()
    note = body + "\n" + cosignature_line(other, body)
    assert verified_cosignatures(note, [witness.verifier()]) == []
    forged = note + NoteSignature(witness.name, witness.key_id, (1).to_bytes(8, "big") + bytes(64)).line()
    with pytest.raises(NoteVerificationError, match="w.example"):
        verified_cosignatures(forged, [witness.verifier()])


def test_malformed_cosignature_and_witness_keys() -> None:
    note = parse_note(c2sp.CHECKPOINT_NOTE)
    with pytest.raises(TlogFormatError, match="8 \\+ 64"):
        parse_cosignature(note.signatures[0])  # 64 bytes: an Ed25519 note signature, not a cosignature
    with pytest.raises(TlogFormatError, match="not supported"):
        load_verifier("x.example+" + key_id("x.example", 0x09, bytes(32)).hex() + "+"
                      + base64.b64encode(b"\x09" + bytes(32)).decode())
