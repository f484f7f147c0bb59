"""Ed25519 signing keys: the private key file, the public keyring, init/rotate/export.

Key id
    ``key_id = hex(SHA-256(raw 32-byte public key))[:32]`` — the fingerprint of the public key.
    Every entry and checkpoint carries the key id that signed it.

Private key
    A PKCS#8 PEM file, mode 0600, or the ``CLEARANCE_SIGNING_KEY`` environment variable holding
    the PEM text, the base64 of the raw 32-byte private key, or the path of a key file.
    :func:`load_signing_key` refuses a file that group or others can read
    (:class:`~audit.errors.InsecureKeyFile`). The key object is loaded once and reused.

Rotation
    :func:`rotate_key` writes a new key in place of the old one and renames the old private key
    file to ``<path>.<old key id>.retired`` (still 0600; destroy it once you no longer need it).
    Public keys are never deleted: they stay in the ``audit_signing_keys`` table (registered by
    the writer at start and by ``init``/``rotate`` when given a store) and in exported keyrings,
    so entries signed by a retired key still verify.

Keyring
    :class:`Keyring` maps key ids to public keys. Build it from the database
    (``AuditStore.keyring()``) or, for verification that does not trust the database, from an
    exported keyring file (:meth:`Keyring.from_file`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .canonical import format_time
from .errors import InsecureKeyFile, SigningKeyError

ENV_VAR = "CLEARANCE_SIGNING_KEY"
ALGORITHM = "Ed25519"
KEY_ID_HEX_CHARS = 32
KEYRING_FORMAT = "clearance.keyring.v1"

__all__ = [
    "ENV_VAR",
    "Keyring",
    "PublicKey",
    "SigningKey",
    "export_keyring",
    "init_key",
    "key_id_for",
    "load_signing_key",
    "rotate_key",
]


def key_id_for(raw_public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key (truncated hex SHA-256)."""
    return hashlib.sha256(raw_public_key).hexdigest()[:KEY_ID_HEX_CHARS]


@dataclass(frozen=True)
class PublicKey:
    """A public verification key, as registered in the database and exported."""

    key_id: str
    raw: bytes
    created_at: datetime | None = None
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise SigningKeyError(f"an Ed25519 public key is 32 bytes, got {len(self.raw)}")
        expected = key_id_for(self.raw)
        if self.key_id != expected:
            raise SigningKeyError(
                f"key id {self.key_id!r} is not the fingerprint of its public key ({expected!r})"
            )
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.raw))

    @classmethod
    def from_raw(cls, raw: bytes, *, created_at: datetime | None = None) -> PublicKey:
        return cls(key_id=key_id_for(raw), raw=raw, created_at=created_at)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature over ``data``."""
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by keyring exports and ``GET /v1/audit/keys``."""
        return {
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "public_key": base64.b64encode(self.raw).decode("ascii"),
            "created_at": format_time(self.created_at) if self.created_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PublicKey:
        if data.get("algorithm", ALGORITHM) != ALGORITHM:
            raise SigningKeyError(f"unsupported key algorithm {data.get('algorithm')!r}")
        try:
            raw = base64.b64decode(data["public_key"], validate=True)
        except (KeyError, binascii.Error) as exc:
            raise SigningKeyError(f"malformed public key entry: {exc}") from exc
        return cls(key_id=str(data["key_id"]), raw=raw)

    def pem(self) -> str:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """A loaded Ed25519 private key. Load once at start-up and pass it around."""

    private: Ed25519PrivateKey = field(repr=False)
    public: PublicKey
    source: str

    @property
    def key_id(self) -> str:
        return self.public.key_id

    @classmethod
    def from_private(cls, private: Ed25519PrivateKey, *, source: str) -> SigningKey:
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private=private, public=PublicKey.from_raw(raw), source=source)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_private(Ed25519PrivateKey.generate(), source="memory")

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


class KeyRegistry(Protocol):
    """Where public keys are registered (``AuditStore`` implements it)."""

    def register_key(self, key: PublicKey) -> None: ...


class Keyring(Mapping[str, PublicKey]):
    """Public keys by key id; what a verifier trusts.

    ``rejected`` names key ids whose stored public key was refused (its fingerprint is not the
    id: the keys table was altered); they are not trusted, and verification says why.
    """

    def __init__(self, keys: Iterable[PublicKey] = (), *, rejected: Mapping[str, str] | None = None) -> None:
        self._keys: dict[str, PublicKey] = {}
        for key in keys:
            self._keys[key.key_id] = key
        self.rejected: dict[str, str] = dict(rejected or {})

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, bytes, datetime | None]]) -> Keyring:
        """Build from stored ``(key_id, raw public key, created_at)`` rows, refusing (not
        raising on) a row whose public key is not the one its id names."""
        keys, rejected = [], {}
        for key_id, raw, created_at in rows:
            try:
                keys.append(PublicKey(key_id=key_id, raw=bytes(raw), created_at=created_at))
            except SigningKeyError as exc:
                rejected[key_id] = str(exc)
        return cls(keys, rejected=rejected)

    def __getitem__(self, key_id: str) -> PublicKey:
        return self._keys[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keyring({sorted(self._keys)})"

    def to_dict(self) -> dict[str, Any]:
        return {"format": KEYRING_FORMAT, "keys": [k.to_dict() for k in self._keys.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Keyring:
        if data.get("format") != KEYRING_FORMAT:
            raise SigningKeyError(f"not a Clearance keyring (format {data.get('format')!r})")
        return cls(PublicKey.from_dict(item) for item in data.get("keys", []))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a keyring written by :func:`export_keyring`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SigningKeyError(f"cannot read keyring {path}: {exc}") from exc
        return cls.from_dict(data)


def export_keyring(keys: Iterable[PublicKey], path: str | os.PathLike[str] | None = None) -> str:
    """Serialise public keys as a keyring JSON document; also write it to ``path`` if given."""
    text = json.dumps(Keyring(keys).to_dict(), indent=2, sort_keys=True) + "\n"
    if path is not None:
        _atomic_write(Path(path), text.encode("utf-8"), mode=0o644)
    return text


# -- private key files ------------------------------------------------------------------------


def load_signing_key(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> SigningKey:
    """Load the signing key from ``path``, else from ``CLEARANCE_SIGNING_KEY``.

    ``CLEARANCE_SIGNING_KEY`` may hold PEM text, the base64 of the raw 32-byte private key, or
    the path of a key file. A key file must not be readable by group or others.
    """
    env = os.environ if environ is None else environ
    if path is not None:
        return _load_key_file(Path(path))
    value = env.get(ENV_VAR, "").strip()
    if not value:
        raise SigningKeyError(
            f"no signing key: pass a key file path or set {ENV_VAR} "
            "(create one with `clearance keys init PATH`)"
        )
    if value.startswith("-----BEGIN"):
        return SigningKey.from_private(_parse_pem(value.encode("ascii"), ENV_VAR), source=ENV_VAR)
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) == 32:
        return SigningKey.from_private(Ed25519PrivateKey.from_private_bytes(raw), source=ENV_VAR)
    if Path(value).is_file():
        return _load_key_file(Path(value))
    raise SigningKeyError(
        f"{ENV_VAR} is neither a PEM private key, nor base64 of a 32-byte Ed25519 key, "
        "nor the path of a key file"
    )


def init_key(path: str | os.PathLike[str], *, registry: KeyRegistry | None = None) -> SigningKey:
    """Create a new Ed25519 key file at ``path`` (mode 0600); refuses to overwrite one.

    With ``registry`` (an ``AuditStore``) the public key is registered there as well.
    """
    target = Path(path)
    if target.exists():
        raise SigningKeyError(f"{target} already exists; use rotate_key to replace a key")
    key = SigningKey.generate()
    _atomic_write(target, key.private_pem(), mode=0o600, exclusive=True)
    key = SigningKey(private=key.private, public=key.public, source=str(target))
    if registry is not None:
        registry.register_key(key.public)
    return key


def rotate_key(
    path: str | os.PathLike[str], *, registry: KeyRegistry | None = None
) -> tuple[SigningKey, Path]:
    """Replace the key at ``path`` with a new one; returns the new key and the retired file.

    The old private key file is renamed to ``<path>.<old key id>.retired``. Register the new
    public key (``registry``) before the writer starts signing with it.
    """
    target = Path(path)
    old = _load_key_file(target)
    new = SigningKey.generate()
    if registry is not None:
        registry.register_key(old.public)
        registry.register_key(new.public)
    retired = target.with_name(f"{target.name}.{old.key_id}.retired")
    os.link(target, retired)
    _atomic_write(target, new.private_pem(), mode=0o600)
    return SigningKey(private=new.private, public=new.public, source=str(target)), retired


def _load_key_file(path: Path) -> SigningKey:
    try:
        st = path.stat()
    except OSError as exc:
        raise SigningKeyError(f"cannot read signing key {path}: {exc.strerror}") from exc
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise InsecureKeyFile(str(path), mode)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read signing key {path}: {exc.strerror}") from exc
    return SigningKey.from_private(_parse_pem(data, str(path)), source=str(path))


def _parse_pem(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{where}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: expected an Ed25519 key, found {type(key).__name__}")
    return key


def _atomic_write(path: Path, data: bytes, *, mode: int, exclusive: bool = False) -> None:
    """Write ``data`` to a temporary file with ``mode`` from the start, then rename it in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it; never widens past `mode`
        if exclusive:
            os.link(tmp, path)  # fails if `path` appeared meanwhile
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
