"""The pure-Python Ed25519 verifier: RFC 8032's published vectors, and ``cryptography`` (test-only)
as the reference on valid, tampered and non-canonical signatures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance_client._ed25519 import _BASE, _IDENTITY, _double_scalar_mult, _encode, verify

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc8032_ed25519.json").read_text())["vectors"]


def reference(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        return True
    except InvalidSignature:
        return False


def keypair(seed: bytes) -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private, private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_rfc8032_vectors_verify(vector):
    public, message, signature = (bytes.fromhex(vector[k]) for k in ("public_key", "message", "signature"))
    assert verify(public, message, signature)
    # The vector as transcribed is what cryptography signs from the same secret key.
    private, derived = keypair(bytes.fromhex(vector["secret_key"]))
    assert derived == public and private.sign(message) == signature


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_rfc8032_vectors_fail_when_anything_changes(vector):
    public, message, signature = (bytes.fromhex(vector[k]) for k in ("public_key", "message", "signature"))
    assert not verify(public, message + b"\x00", signature)
    for i in (0, 31, 32, 63):
        bad = bytearray(signature)
        bad[i] ^= 0x01
        assert not verify(public, message, bytes(bad))
    other = keypair(hashlib.sha256(public).digest())[1]
    assert not verify(other, message, signature)


@settings(max_examples=60, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300),
       flip=st.integers(min_value=-1, max_value=64 * 8 - 1))
def test_agrees_with_cryptography(seed, message, flip):
    private, public = keypair(seed)
    signature = bytearray(private.sign(message))
    if flip >= 0:
        signature[flip // 8] ^= 1 << (flip % 8)
    assert verify(public, message, bytes(signature)) == reference(public, message, bytes(signature))


def test_s_not_below_the_group_order_is_refused():
    private, public = keypair(b"\x07" * 32)
    signature = private.sign(b"m")
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    assert not reference(public, b"m", malleated)
    assert not verify(public, b"m", malleated)


def _scalar(seed: bytes) -> int:
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    return (a & ((1 << 254) - 8)) | (1 << 254)


IDENTITY = (1).to_bytes(32, "little")
IDENTITY_Y_NOT_REDUCED = (P + 1).to_bytes(32, "little")  # y = p + 1 ≡ 1
IDENTITY_NEGATIVE_ZERO = (1 | (1 << 255)).to_bytes(32, "little")  # x = 0 with the sign bit set


@pytest.mark.parametrize(("r_bytes", "accepted"), [
    (IDENTITY, True), (IDENTITY_Y_NOT_REDUCED, False), (IDENTITY_NEGATIVE_ZERO, False)])
def test_non_canonical_r_is_refused_like_cryptography(r_bytes, accepted):
    # A signature whose R is the identity: S = k·a makes [S]B = R + [k]A hold. Only the
    # canonical encoding of R may pass.
    seed = b"\x11" * 32
    public = keypair(seed)[1]
    k = int.from_bytes(hashlib.sha512(r_bytes + public + b"m").digest(), "little") % L
    signature = r_bytes + (k * _scalar(seed) % L).to_bytes(32, "little")
    assert reference(public, b"m", signature) is accepted
    assert verify(public, b"m", signature) is accepted


def test_non_canonical_public_keys_are_refused_even_where_cryptography_accepts_them():
    # With A the identity, (R, S) = ([r]B, r) satisfies the equation for any message. OpenSSL
    # (behind cryptography) accepts the key's non-canonical encodings; this verifier refuses them,
    # which is stricter and harmless: verifier keys are pinned and genuine keys are canonical.
    r = 123456789
    signature = _encode(_double_scalar_mult(r, _BASE, 0, _IDENTITY)) + r.to_bytes(32, "little")
    assert reference(IDENTITY, b"anything", signature) and verify(IDENTITY, b"anything", signature)
    for encoding in (IDENTITY_Y_NOT_REDUCED, IDENTITY_NEGATIVE_ZERO):
        assert reference(encoding, b"anything", signature)
        assert not verify(encoding, b"anything", signature)


@pytest.mark.parametrize(("public", "signature"), [
    (b"\x00" * 31, b"\x00" * 64), (b"\x00" * 33, b"\x00" * 64), (IDENTITY, b"\x00" * 63), (IDENTITY, b"\x00" * 65),
    ((2).to_bytes(32, "little"), b"\x00" * 64),  # y = 2 is not on the curve
])
def test_malformed_inputs_are_refused(public, signature):
    assert not verify(public, b"m", signature)
