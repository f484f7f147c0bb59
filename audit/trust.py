"""Whose checkpoint signatures the v2 log trusts, and the log's own signer.

Every v2 verification function takes the trusted verifier keys as an explicit parameter (a
sequence of :class:`audit.tlog.note.Verifier`). The service and the CLI get them from
:func:`trusted_verifiers` only, so pinning keys outside the database (a file of verifier keys)
replaces this one function.

A checkpoint is signed with the service's Ed25519 key under the log's origin as the C2SP key
name, so the verifier key of a public key is ``<origin>+<key hash>+<base64(0x01 ‖ key)>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives import serialization

from .keys import PublicKey, SigningKey
from .tlog.note import Ed25519Signer, Ed25519Verifier, Verifier

__all__ = ["log_signer", "log_verifier", "trusted_verifiers"]


def log_signer(key: SigningKey, origin: str) -> Ed25519Signer:
    """The C2SP signer of checkpoints of the log ``origin`` with ``key``."""
    seed = key.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
    return Ed25519Signer(origin, seed)


def log_verifier(key: PublicKey, origin: str) -> Ed25519Verifier:
    """The C2SP verifier of checkpoints of the log ``origin`` signed with ``key``."""
    return Ed25519Verifier(origin, key.raw)


def trusted_verifiers(keys: Iterable[PublicKey], origin: str) -> Sequence[Verifier]:
    """The verifiers the API and CLI trust: for now every public key registered in the
    database keyring (``AuditStore.list_keys()``), under the log's origin.

    The one place to replace with keys pinned outside the database.
    """
    return tuple(log_verifier(key, origin) for key in keys)
