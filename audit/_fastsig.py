"""Ed25519 by libsodium: signature checks first (the rate of log verification) and the writer's
checkpoint signatures (one per batch).

Verifying the v2 log checks one Ed25519 signature per checkpoint (a checkpoint per writer batch:
~3,100 per 100,000 entries). OpenSSL's Ed25519 verification (``cryptography``) takes ~120 µs a
signature on the development machine, libsodium's (PyNaCl) ~56 µs: half of verification's CPU
beside the leaves was signatures (docs/performance.md, "Audit log v2").

Same verdicts as the wrapped :class:`~audit.tlog.note.Ed25519Verifier`: libsodium accepts a
subset of what OpenSSL accepts (both check ``[S]B = R + [k]A`` without the cofactor; libsodium
also refuses a non-canonical ``S``, ``R`` or ``A`` and small-order ``R`` or ``A``, which OpenSSL
partly lets through), so a signature libsodium accepts OpenSSL accepts too, and one libsodium
refuses is asked of OpenSSL, whose answer stands.

Signing: Ed25519 signatures are deterministic (RFC 8032: the nonce is a hash of the key and the
message), so libsodium's signature of a note is byte for byte OpenSSL's; it costs about a third
less (~67 against ~97 µs on the development machine, and a fifth of the instructions the writer's
process spends per entry: docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from nacl.bindings import crypto_sign, crypto_sign_BYTES, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

from .tlog.note import Ed25519Signer, Ed25519Verifier, Verifier

__all__ = ["SodiumSigner", "sodium_first"]


class SodiumSigner(Ed25519Signer):
    """An :class:`Ed25519Signer` that signs by libsodium (the same signatures, module docstring)."""

    def __init__(self, name: str, seed: bytes) -> None:
        super().__init__(name, seed)
        self._secret = crypto_sign_seed_keypair(seed)[1]

    def sign(self, text: bytes) -> bytes:
        return crypto_sign(text, self._secret)[:crypto_sign_BYTES]  # signature ‖ text


class _SodiumFirst:
    """An :class:`Ed25519Verifier` whose :meth:`verify` asks libsodium first (cffi releases the
    GIL during the call, as ``cryptography`` does)."""

    def __init__(self, inner: Ed25519Verifier) -> None:
        self._inner = inner
        self._public = inner.public_key

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def key_id(self) -> bytes:
        return self._inner.key_id

    def verify(self, text: bytes, signature: bytes) -> bool:
        # libsodium takes signature ‖ text: only a signature of the exact length splits there.
        if len(signature) == crypto_sign_BYTES:
            try:
                crypto_sign_open(signature + text, self._public)
                return True
            except BadSignatureError:
                pass
        return self._inner.verify(text, signature)


def sodium_first(trusted: Sequence[Verifier]) -> list[Verifier]:
    """``trusted`` with each Ed25519 verifier checking by libsodium first (others as given)."""
    return [_SodiumFirst(v) if isinstance(v, Ed25519Verifier) else v for v in trusted]
