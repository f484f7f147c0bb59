"""C2SP signed-note: text signed by one or more keys, with Ed25519 signers and verifiers.

A note is ``text`` (UTF-8, ends in a newline, no control characters but newline), a blank
line, then one or more signature lines::

    — <key name> base64(key ID (4 bytes, big-endian) ‖ signature)

Keys (signature type ``0x01``, Ed25519 over the note text)::

    key ID        = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]
    verifier key  = name + "+" + hex(key ID) + "+" + base64(0x01 ‖ public key)
    signer key    = "PRIVATE+KEY+" + name + "+" + hex(key ID) + "+" + base64(0x01 ‖ 32-byte seed)

:func:`open_note` verifies a note against a set of trusted verifiers as the spec requires:
signatures whose (name, key ID) match no trusted key are ignored; a matching signature that
fails to verify rejects the whole note; at least one must verify. Key types other than
``0x01`` (the ``0x04`` cosignatures of :mod:`audit.tlog.cosignature`) plug in through the
:class:`Verifier` and :class:`Signer` protocols.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import NoteVerificationError, TlogFormatError

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "— "  # em dash U+2014, space
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100  # the spec requires accepting at least 16
PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"

__all__ = [
    "ALG_ED25519",
    "Ed25519Signer",
    "Ed25519Verifier",
    "MAX_SIGNATURES",
    "Note",
    "NoteSignature",
    "OpenedNote",
    "Signer",
    "Verifier",
    "VerifierKey",
    "check_key_name",
    "format_signer_key",
    "format_verifier_key",
    "key_id",
    "open_note",
    "parse_note",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
    "signature_line",
]

# Unicode spaces (Zs, plus the ASCII/C0 whitespace Python's str.isspace knows).
_SPACE = re.compile(r"\s|[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX8 = re.compile(r"[0-9a-f]{8}")


class Verifier(Protocol):
    """A trusted key: its name, its 4-byte key ID and how to check a signature over note text."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key ID) is valid over ``text``."""
        ...


class Signer(Protocol):
    """A private key that signs note text; :attr:`name` and :attr:`key_id` go in the line."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes: ...


def check_key_name(name: str, what: str = "key name") -> str:
    """``name`` if it is a valid key name: non-empty, no Unicode space, no ``+``."""
    if not isinstance(name, str) or not name:
        raise TlogFormatError(what, "must be non-empty")
    if "+" in name or _SPACE.search(name) or _ANY_CONTROL.search(name):
        raise TlogFormatError(what, f"{name!r} contains a space, a control character or '+'")
    return name


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """``SHA-256(name ‖ 0x0A ‖ alg ‖ public_key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A parsed verifier key string: ``name+hex(key ID)+base64(alg ‖ public key)``."""

    name: str
    key_id: bytes
    alg: int
    public_key: bytes

    def __str__(self) -> str:
        return format_verifier_key(self.name, self.alg, self.public_key)


def format_verifier_key(name: str, alg: int, public_key: bytes) -> str:
    """The verifier key string for ``public_key`` of signature type ``alg``."""
    check_key_name(name)
    material = base64.b64encode(bytes([alg]) + public_key).decode()
    return f"{name}+{key_id(name, alg, public_key).hex()}+{material}"


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key string; the key ID must be the one its name and key give."""
    what = "verifier key"
    parts = text.strip().split("+", 2)  # base64 may contain "+", names and IDs may not
    if len(parts) != 3:
        raise TlogFormatError(what, "expected name+hex(key ID)+base64(type ‖ key), three parts")
    name, hex_id, material = parts
    check_key_name(name, what)
    if not _HEX8.fullmatch(hex_id):
        raise TlogFormatError(what, f"key ID {hex_id!r} is not 8 lowercase hex digits")
    raw = _b64decode(material, what)
    if len(raw) < 2:
        raise TlogFormatError(what, "key material is empty")
    alg, public = raw[0], raw[1:]
    if alg in (ALG_ED25519, 0x04) and len(public) != 32:
        raise TlogFormatError(what, f"an Ed25519 public key is 32 bytes, got {len(public)}")
    expected = key_id(name, alg, public)
    if bytes.fromhex(hex_id) != expected:
        raise TlogFormatError(what, f"key ID {hex_id} does not match its name and key (computed {expected.hex()})")
    return VerifierKey(name, expected, alg, public)


def _b64decode(text: str, what: str) -> bytes:
    if not _B64.fullmatch(text):
        raise TlogFormatError(what, "not standard base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TlogFormatError(what, f"not standard base64 ({exc})") from exc
    if base64.b64encode(raw).decode() != text:
        raise TlogFormatError(what, "base64 is not in its canonical (padded) form")
    return raw


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


class Ed25519Verifier:
    """Verifies type ``0x01`` (Ed25519 over the note text) signatures of one named key."""

    alg = ALG_ED25519

    def __init__(self, name: str, public_key: bytes) -> None:
        """``name``: the key name in signature lines; ``public_key``: 32 raw bytes."""
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
    def public_key(self) -> bytes:
        return self._raw

    @property
    def verifier_key(self) -> str:
        return format_verifier_key(self._name, self.alg, self._raw)

    @classmethod
    def from_key(cls, text: str) -> Ed25519Verifier:
        """From a verifier key string of type ``0x01``."""
        parsed = parse_verifier_key(text)
        if parsed.alg != ALG_ED25519:
            raise TlogFormatError("verifier key", f"type 0x{parsed.alg:02x} is not Ed25519 (0x01)")
        return cls(parsed.name, parsed.public_key)

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self._public.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Ed25519Verifier({self.verifier_key!r})"


class Ed25519Signer:
    """Signs note text with type ``0x01`` Ed25519 signatures under ``name``."""

    alg = ALG_ED25519

    def __init__(self, name: str, seed: bytes) -> None:
        """``name``: the key name (for a log, its origin); ``seed``: the 32-byte private key."""
        self._name = check_key_name(name)
        if len(seed) != 32:
            raise TlogFormatError("signer key", f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self._seed = seed
        self._public = _raw_public(self._private.public_key())
        self._key_id = key_id(name, self.alg, self._public)

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._name, self._public)

    @property
    def verifier_key(self) -> str:
        return format_verifier_key(self._name, self.alg, self._public)

    @property
    def signer_key(self) -> str:
        """``PRIVATE+KEY+name+hex(key ID)+base64(type ‖ seed)``: keep it secret."""
        return format_signer_key(self._name, self.alg, self._seed)

    def sign(self, text: bytes) -> bytes:
        return self._private.sign(text)

    def __repr__(self) -> str:  # never the seed
        return f"{type(self).__name__}({self.verifier_key!r})"


def format_signer_key(name: str, alg: int, seed: bytes) -> str:
    """The private signer key string (the ``golang.org/x/mod/sumdb/note`` form)."""
    check_key_name(name)
    public = _raw_public(Ed25519PrivateKey.from_private_bytes(seed).public_key())
    material = base64.b64encode(bytes([alg]) + seed).decode()
    return f"{PRIVATE_KEY_PREFIX}{name}+{key_id(name, alg, public).hex()}+{material}"


def parse_signer_key(text: str) -> tuple[str, int, bytes]:
    """``(name, type, seed)`` from a private signer key string; the key ID must match."""
    what = "signer key"
    text = text.strip()
    if not text.startswith(PRIVATE_KEY_PREFIX):
        raise TlogFormatError(what, f"does not start with {PRIVATE_KEY_PREFIX!r}")
    parts = text[len(PRIVATE_KEY_PREFIX):].split("+", 2)
    if len(parts) != 3:
        raise TlogFormatError(what, "expected PRIVATE+KEY+name+hex(key ID)+base64(type ‖ seed)")
    name, hex_id, material = parts
    check_key_name(name, what)
    if not _HEX8.fullmatch(hex_id):
        raise TlogFormatError(what, "key ID is not 8 lowercase hex digits")
    raw = _b64decode(material, what)
    if len(raw) != 33:
        raise TlogFormatError(what, f"expected a type byte and a 32-byte seed, got {len(raw)} bytes")
    alg, seed = raw[0], raw[1:]
    public = _raw_public(Ed25519PrivateKey.from_private_bytes(seed).public_key())
    if bytes.fromhex(hex_id) != key_id(name, alg, public):
        raise TlogFormatError(what, "key ID does not match its name and key")
    return name, alg, seed


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """``— name base64(key ID ‖ signature)`` and a newline."""
        return signature_line(self.name, self.key_id, self.signature)


def signature_line(name: str, key_id_: bytes, signature: bytes) -> str:
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(key_id_ + signature).decode()}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed (not yet verified) signed note. Never act on :attr:`text` before :func:`open_note`."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


# One regex scan instead of a Python loop per character: verification opens thousands of notes.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # but newline
_ANY_CONTROL = re.compile("[\x00-\x1f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(text: str, what: str) -> None:
    if not text.endswith("\n"):
        raise TlogFormatError(what, "text does not end with a newline")
    bad = _CONTROL.search(text)
    if bad is not None:
        raise TlogFormatError(what, f"contains the control character U+{ord(bad.group()):04X}")


def parse_note(data: str | bytes) -> Note:
    """Split a signed note into its text and signature lines (syntax only, nothing verified)."""
    what = "signed note"
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_BYTES:
            raise TlogFormatError(what, f"longer than {MAX_NOTE_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TlogFormatError(what, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    elif len(data.encode("utf-8", "surrogatepass")) > MAX_NOTE_BYTES:
        raise TlogFormatError(what, f"longer than {MAX_NOTE_BYTES} bytes")
    if _SURROGATE.search(data):
        raise TlogFormatError(what, "not valid UTF-8 (lone surrogate)")
    _check_text(data, what)
    split = data.rfind("\n\n")
    if split < 0:
        raise TlogFormatError(what, "no blank line between the text and the signatures")
    text, block = data[:split + 1], data[split + 2:]
    if not block:
        raise TlogFormatError(what, "no signature lines after the blank line")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise TlogFormatError(what, f"{len(lines)} signature lines, more than the limit of {MAX_SIGNATURES}")
    signatures = tuple(_parse_signature_line(line, number) for number, line in enumerate(lines, 1))
    return Note(text, signatures)


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    what = f"signature line {number}"
    if not line.startswith(SIGNATURE_PREFIX):
        raise TlogFormatError(what, "does not start with an em dash (U+2014) and a space")
    name, space, encoded = line[len(SIGNATURE_PREFIX):].partition(" ")
    if not space:
        raise TlogFormatError(what, "expected '— <key name> <base64 signature>'")
    check_key_name(name, what)
    raw = _b64decode(encoded, what)
    if len(raw) < 5:
        raise TlogFormatError(what, f"a signature is a 4-byte key ID and at least one byte, got {len(raw)} bytes")
    return NoteSignature(name, raw[:4], raw[4:])


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """The signed note of ``text`` (which must end in a newline) by each of ``signers``."""
    _check_text(text, "note text")
    if not text.strip("\n"):
        raise TlogFormatError("note text", "is empty")
    data = text.encode()
    lines = [signature_line(s.name, s.key_id, s.sign(data)) for s in signers]
    if not lines:
        raise ValueError("a signed note needs at least one signer")
    return text + "\n" + "".join(lines)


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note with at least one valid signature by a trusted key.

    ``verified``: the signatures that verified, each with the name of its key.
    ``unverified``: signatures by keys the caller did not trust (ignored, kept for forwarding).
    """

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]

    @property
    def signer_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.name for s in self.verified))


def open_note(data: str | bytes | Note, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Verify a signed note against ``verifiers`` (the trusted keys).

    Raises :class:`NoteVerificationError` when a trusted key's signature fails (the whole note is
    rejected) or when no trusted key signed it; the latter names any signature whose key name
    is trusted but whose key ID is not (a key the caller does not know under that name).
    """
    note = data if isinstance(data, Note) else parse_note(data)
    by_id: dict[tuple[str, bytes], list[Verifier]] = {}
    for verifier in verifiers:
        by_id.setdefault((verifier.name, bytes(verifier.key_id)), []).append(verifier)
    trusted_names: dict[str, list[str]] = {}
    for name, kid in by_id:
        trusted_names.setdefault(name, []).append(kid.hex())
    text = note.text.encode()
    verified, unverified = [], []
    for signature in note.signatures:
        candidates = by_id.get((signature.name, signature.key_id))
        if not candidates:
            unverified.append(signature)
            continue
        if not any(v.verify(text, signature.signature) for v in candidates):
            raise NoteVerificationError(
                "signature by a trusted key verifies",
                detail=f"the signature of {signature.name} (key ID {signature.key_id.hex()}) is invalid "
                       "for this text: the note was altered or re-signed",
            )
        verified.append(signature)
    if not verified:
        near = [f"{s.name} signed with key ID {s.key_id.hex()}, but the trusted key of that name has "
                f"key ID {' or '.join(trusted_names[s.name])}" for s in unverified if s.name in trusted_names]
        trusted = ", ".join(f"{name}+{kid.hex()}" for name, kid in by_id) or "none"
        raise NoteVerificationError(
            "note has a signature by a trusted key",
            expected=trusted,
            found=", ".join(f"{s.name}+{s.key_id.hex()}" for s in note.signatures),
            detail="; ".join(near) if near else None,
        )
    return OpenedNote(note.text, tuple(verified), tuple(unverified))
