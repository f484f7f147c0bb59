"""C2SP tlog-cosignature, Ed25519 version (``cosignature/v1``, signature type ``0x04``).

A witness's cosignature is a signature line on the checkpoint note::

    — <witness name> base64(key ID ‖ timestamp (8 bytes, big-endian) ‖ Ed25519 signature (64))

    key ID  = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ 32-byte public key)[:4]
    signed  = "cosignature/v1\\n" ‖ "time <timestamp>\\n" ‖ checkpoint body (the note text)

``timestamp`` is POSIX seconds, at most 2**63 - 1, never 0. Witness verifier keys are vkeys of
type ``0x04`` (``name+hex(key ID)+base64(0x04 ‖ public key)``); a witness's private key uses
the signer key form with type ``0x04``.

:class:`CosignatureVerifier` and :class:`CosignatureSigner` plug into :func:`audit.tlog.note.open_note`
and :func:`audit.tlog.note.sign_note`, so "this checkpoint carries K valid cosignatures" is an
ordinary note verification with the witnesses' keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import NoteVerificationError, TlogFormatError
from .note import (
    ALG_ED25519,
    Ed25519Signer,
    Ed25519Verifier,
    NoteSignature,
    Verifier,
    check_key_name,
    format_signer_key,
    format_verifier_key,
    key_id,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    signature_line,
)

ALG_COSIGNATURE_V1 = 0x04
HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1

__all__ = [
    "ALG_COSIGNATURE_V1",
    "Cosignature",
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosignature_line",
    "cosigned_message",
    "load_signer",
    "load_verifier",
    "parse_cosignature",
    "verified_cosignatures",
]


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """The bytes a ``cosignature/v1`` signature covers, for checkpoint ``body`` at ``timestamp``."""
    if not 0 < timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp must be in [1, 2**63 - 1], got {timestamp}")
    return HEADER + f"time {timestamp}\n".encode() + body


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A parsed cosignature line: witness name, key ID, timestamp and Ed25519 signature."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def line(self) -> str:
        return signature_line(self.name, self.key_id, self.timestamp.to_bytes(8, "big") + self.signature)


def parse_cosignature(signature: NoteSignature) -> Cosignature:
    """Read a note signature as a ``cosignature/v1`` (8-byte timestamp, 64-byte signature)."""
    if len(signature.signature) != 72:
        raise TlogFormatError("cosignature", f"expected 8 + 64 bytes after the key ID, got {len(signature.signature)}")
    timestamp = int.from_bytes(signature.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise TlogFormatError("cosignature", "timestamp exceeds 2**63 - 1")
    return Cosignature(signature.name, signature.key_id, timestamp, signature.signature[8:])


class CosignatureVerifier:
    """Verifies one witness's ``cosignature/v1`` signatures (a :class:`audit.tlog.note.Verifier`)."""

    alg = ALG_COSIGNATURE_V1

    def __init__(self, name: str, public_key: bytes) -> None:
        """``name``: the witness's key name; ``public_key``: its 32-byte Ed25519 public key."""
        self._name = check_key_name(name)
        self._public = Ed25519PublicKey.from_public_bytes(public_key)
        self._raw = public_key
        self._key_id = key_id(name, self.alg, public_key)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def verifier_key(self) -> str:
        return format_verifier_key(self._name, self.alg, self._raw)

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 72:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if not 0 < timestamp <= MAX_TIMESTAMP:
            return False
        try:
            self._public.verify(signature[8:], cosigned_message(text, timestamp))
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self.verifier_key!r})"


class CosignatureSigner:
    """A witness key: signs checkpoint bodies as ``cosignature/v1`` with the current time."""

    alg = ALG_COSIGNATURE_V1

    def __init__(self, name: str, seed: bytes, *, clock: Callable[[], float] = time.time) -> None:
        """``name``: the witness name; ``seed``: its 32-byte private key; ``clock``: POSIX time."""
        self._name = check_key_name(name)
        if len(seed) != 32:
            raise TlogFormatError("signer key", f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self._seed = seed
        self._public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = key_id(name, self.alg, self._public)
        self._clock = clock

    @classmethod
    def generate(cls, name: str, *, clock: Callable[[], float] = time.time) -> CosignatureSigner:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw(), clock=clock)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self._name, self._public)

    @property
    def verifier_key(self) -> str:
        return format_verifier_key(self._name, self.alg, self._public)

    @property
    def signer_key(self) -> str:
        return format_signer_key(self._name, self.alg, self._seed)

    def sign(self, text: bytes) -> bytes:
        """``timestamp (8 bytes BE) ‖ Ed25519(cosigned_message(text, timestamp))``."""
        return self.sign_at(text, int(self._clock()))

    def sign_at(self, text: bytes, timestamp: int) -> bytes:
        return timestamp.to_bytes(8, "big") + self._private.sign(cosigned_message(text, timestamp))

    def __repr__(self) -> str:  # never the seed
        return f"CosignatureSigner({self.verifier_key!r})"


def load_verifier(vkey: str) -> Verifier:
    """A verifier from a verifier key string: a log key (``0x01``) or a witness key (``0x04``)."""
    parsed = parse_verifier_key(vkey)
    if parsed.alg == ALG_ED25519:
        return Ed25519Verifier(parsed.name, parsed.public_key)
    if parsed.alg == ALG_COSIGNATURE_V1:
        return CosignatureVerifier(parsed.name, parsed.public_key)
    raise TlogFormatError("verifier key", f"signature type 0x{parsed.alg:02x} is not supported "
                          "(0x01 Ed25519 log keys, 0x04 Ed25519 cosignatures)")


def load_signer(text: str) -> Ed25519Signer | CosignatureSigner:
    """A signer from a private signer key string (``PRIVATE+KEY+…``) of type ``0x01`` or ``0x04``."""
    name, alg, seed = parse_signer_key(text)
    if alg == ALG_ED25519:
        return Ed25519Signer(name, seed)
    if alg == ALG_COSIGNATURE_V1:
        return CosignatureSigner(name, seed)
    raise TlogFormatError("signer key", f"signature type 0x{alg:02x} is not supported")


def verified_cosignatures(note: str | bytes, witnesses: Sequence[Verifier]) -> list[Cosignature]:
    """The cosignatures of ``note`` that verify with ``witnesses``, one per witness at most.

    Signatures by other keys are ignored; a signature that matches a witness's name and key ID
    but does not verify raises :class:`NoteVerificationError` (the note was altered).
    The log's own signature is not checked here (use :func:`audit.tlog.checkpoint.open_checkpoint`).
    """
    parsed = parse_note(note)
    text = parsed.text.encode()
    found: dict[tuple[str, bytes], Cosignature] = {}
    for witness in witnesses:
        for signature in parsed.signatures:
            if (signature.name, signature.key_id) != (witness.name, witness.key_id):
                continue
            if not witness.verify(text, signature.signature):
                raise NoteVerificationError(
                    "cosignature by a trusted witness verifies",
                    detail=f"the cosignature of {witness.name} (key ID {witness.key_id.hex()}) is invalid",
                )
            found.setdefault((witness.name, witness.key_id), parse_cosignature(signature))
    return list(found.values())


def cosignature_line(signer: CosignatureSigner, body: str, *, timestamp: int | None = None) -> str:
    """The signature line a witness adds to a checkpoint with ``body``."""
    data = body.encode()
    raw = signer.sign(data) if timestamp is None else signer.sign_at(data, timestamp)
    return signature_line(signer.name, signer.key_id, raw)
