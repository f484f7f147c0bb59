"""audit._fastsig: libsodium first, OpenSSL's verdict wherever libsodium refuses."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit._fastsig import sodium_first
from audit.tlog.checkpoint import Checkpoint, open_checkpoint
from audit.tlog.errors import NoteVerificationError
from audit.tlog.note import Ed25519Signer, Ed25519Verifier, sign_note

# The order of the Ed25519 group: S + L is the same scalar written non-canonically.
L = 2**252 + 27742317777372353535851937790883648493
TEXT = b"example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"


def _key() -> tuple[Ed25519PrivateKey, Ed25519Verifier]:
    private = Ed25519PrivateKey.generate()
    return private, Ed25519Verifier("example.com/log", private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def _non_canonical(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:], "little") + L
    return signature[:32] + s.to_bytes(32, "little")


def test_every_verdict_is_openssls() -> None:
    private, verifier = _key()
    (fast,) = sodium_first([verifier])
    good = private.sign(TEXT)
    flipped = bytes([good[0] ^ 1]) + good[1:]
    cases = [
        (TEXT, good), (TEXT + b"x", good), (TEXT, flipped), (TEXT, good[:63]), (TEXT, good + b"\x00"),
        (TEXT, bytes(64)), (TEXT, _non_canonical(good)), (b"", private.sign(b"")),
        # the length check: a 63-byte signature followed by the text's first byte is not read as one
        (TEXT[1:], good[:63]),
    ]
    verdicts = [(verifier.verify(t, s), fast.verify(t, s)) for t, s in cases]
    assert [v for v, _ in verdicts] == [True, False, False, False, False, False, False, True, False]
    assert [f for _, f in verdicts] == [v for v, _ in verdicts]


def test_a_valid_signature_is_settled_by_libsodium_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    private, verifier = _key()
    (fast,) = sodium_first([verifier])

    def refuse(text: bytes, signature: bytes) -> bool:
        raise AssertionError("OpenSSL was asked")

    monkeypatch.setattr(verifier, "verify", refuse)
    assert fast.verify(TEXT, private.sign(TEXT))


def test_checkpoints_open_and_are_refused_as_with_the_wrapped_keys() -> None:
    seed = bytes(range(32))
    signer = Ed25519Signer("example.com/log", seed)
    verifier = Ed25519Verifier("example.com/log", Ed25519PrivateKey.from_private_bytes(seed).public_key()
                               .public_bytes(Encoding.Raw, PublicFormat.Raw))
    note = sign_note(Checkpoint("example.com/log", 3, bytes(32)).body(), [signer])
    fast = sodium_first([verifier])
    assert open_checkpoint(note, fast, origin="example.com/log") == open_checkpoint(note, [verifier],
                                                                                    origin="example.com/log")
    forged = note.replace("\n3\n", "\n4\n")
    with pytest.raises(NoteVerificationError) as by_openssl:
        open_checkpoint(forged, [verifier])
    with pytest.raises(NoteVerificationError) as by_sodium:
        open_checkpoint(forged, fast)
    assert str(by_sodium.value) == str(by_openssl.value)


def test_libsodium_signs_notes_as_openssl_does() -> None:
    """Ed25519 is deterministic: the writer's signer (libsodium) gives OpenSSL's signature of
    every text, byte for byte, and a note it signs opens with the plain OpenSSL verifier."""
    import os
    import random

    from audit._fastsig import SodiumSigner
    from audit.tlog.note import Ed25519Signer, open_note, sign_note

    rng = random.Random(11)
    for _ in range(200):
        seed = os.urandom(32)
        ours, openssl = SodiumSigner("clearance/audit", seed), Ed25519Signer("clearance/audit", seed)
        assert (ours.name, ours.key_id, ours.public_key) == (openssl.name, openssl.key_id, openssl.public_key)
        text = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 63, 64, 65, 300, 5000])))
        assert ours.sign(text) == openssl.sign(text)
    note = sign_note("clearance/audit\n5\nAAAA\n", [ours])
    assert open_note(note, [openssl.verifier()]).signer_names == ("clearance/audit",)


def test_the_log_signs_by_libsodium() -> None:
    from audit._fastsig import SodiumSigner
    from audit.keys import SigningKey
    from audit.trust import log_signer

    assert isinstance(log_signer(SigningKey.generate(), "clearance/audit"), SodiumSigner)
