"""C2SP signed notes (Ed25519), verifier keys and tlog checkpoints.

Formats (c2sp.org/signed-note, c2sp.org/tlog-checkpoint):
- verifier key: ``<name>+<hex key id>+<base64(0x01 || 32-byte Ed25519 public key)>``, where the
  key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key);
- note: text ending in a newline, a blank line, then signature lines
  ``— <name> <base64(4-byte key id || 64-byte signature)>`` over the text (final newline included);
- checkpoint text: origin, tree size (decimal, no leading zeros), base64 root hash, then
  optional non-empty extension lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from clearance_client import _ed25519

_ED25519 = 0x01
_MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
_MAX_NOTE_BYTES = 1 << 20
_DASH = "\u2014"


class NoteError(ValueError):
    """A malformed verifier key, note or checkpoint; the message says which rule it breaks."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what} is not standard base64: {text!r}") from exc


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte Ed25519 key id of a signed-note key."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A trusted Ed25519 note key, parsed from its ``name+hexid+base64`` form."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)  # base64 may itself hold "+"
        if len(parts) != 3:
            raise NoteError(f"a verifier key has three '+'-separated parts (name+keyid+key), got {text!r}")
        name, hex_id, b64 = parts
        if not _valid_name(name):
            raise NoteError(f"verifier key name {name!r} is empty or holds a space or '+'")
        if len(hex_id) != 8 or hex_id != hex_id.lower():
            raise NoteError(f"verifier key id {hex_id!r} is not 8 lowercase hex digits")
        try:
            given_id = bytes.fromhex(hex_id)
        except ValueError as exc:
            raise NoteError(f"verifier key id {hex_id!r} is not hex") from exc
        material = _b64decode(b64, "verifier key material")
        if len(material) != 33 or material[0] != _ED25519:
            raise NoteError("verifier key material is not 0x01 followed by a 32-byte Ed25519 public key")
        public_key = material[1:]
        if key_id(name, public_key) != given_id:
            raise NoteError(f"verifier key {name!r}: id {hex_id} does not match its public key "
                            f"(computed {key_id(name, public_key).hex()})")
        return cls(name, given_id, public_key)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"


def parse_verifier_keys(keys: str | Iterable[str | VerifierKey]) -> list[VerifierKey]:
    """Verifier keys from a list, or from text with one key per line ('#' comments allowed)."""
    items: Iterable[str | VerifierKey]
    if isinstance(keys, str):
        items = [line for line in keys.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    else:
        items = keys
    parsed = [k if isinstance(k, VerifierKey) else VerifierKey.parse(k) for k in items]
    if not parsed:
        raise NoteError("no trusted verifier key was given")
    return parsed


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    text: str
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def parse(cls, note: str) -> SignedNote:
        if len(note.encode("utf-8", "surrogatepass")) > _MAX_NOTE_BYTES:
            raise NoteError(f"the note is larger than {_MAX_NOTE_BYTES} bytes")
        try:
            note.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise NoteError("the note is not valid UTF-8") from exc
        if any(ch < " " and ch != "\n" for ch in note):
            raise NoteError("the note holds an ASCII control character other than newline")
        if not note.endswith("\n"):
            raise NoteError("the note does not end with a newline")
        split = note.rfind("\n\n")
        if split < 0:
            raise NoteError("the note has no blank line between its text and its signatures")
        text, sig_block = note[: split + 1], note[split + 2 :]
        lines = sig_block[:-1].split("\n") if sig_block else []
        if not lines:
            raise NoteError("the note has no signature lines")
        if len(lines) > _MAX_SIGNATURES:
            raise NoteError(f"the note has {len(lines)} signatures, more than the {_MAX_SIGNATURES} accepted")
        signatures = []
        for line in lines:
            if not line.startswith(_DASH + " "):
                raise NoteError(f"signature line does not start with an em dash and a space: {line!r}")
            fields = line[2:].split(" ")
            if len(fields) != 2 or not _valid_name(fields[0]):
                raise NoteError(f"signature line is not '— <name> <base64>': {line!r}")
            raw = _b64decode(fields[1], f"signature of {fields[0]!r}")
            if len(raw) < 5:
                raise NoteError(f"signature of {fields[0]!r} is too short to hold a key id and a signature")
            signatures.append(NoteSignature(fields[0], raw[:4], raw[4:]))
        return cls(text, tuple(signatures))

    def verified_by(self, trusted: Iterable[VerifierKey]) -> list[VerifierKey]:
        """The trusted keys whose signature verifies; raises NoteError if a trusted key's fails.

        Signatures by unknown keys are ignored, as the spec requires (witness cosignatures, keys
        after a rotation). An empty result means no trusted key signed the note.
        """
        keys = {(k.name, k.key_id): k for k in trusted}
        message = self.text.encode("utf-8")
        good = []
        for sig in self.signatures:
            key = keys.get((sig.name, sig.key_id))
            if key is None:
                continue
            if len(sig.signature) != 64 or not _ed25519.verify(key.public_key, message, sig.signature):
                raise NoteError(f"the signature by trusted key {key.name!r} ({key.key_id.hex()}) does not verify")
            good.append(key)
        return good


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text[:-1].split("\n") if text.endswith("\n") else None
        if lines is None or len(lines) < 3 or any(not line for line in lines):
            raise NoteError("the checkpoint text is not at least three non-empty lines ending in a newline")
        origin, size_text, root_text, *extensions = lines
        if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise NoteError(f"checkpoint tree size {size_text!r} is not a decimal number without leading zeros")
        root = _b64decode(root_text, "checkpoint root hash")
        if len(root) != 32:
            raise NoteError(f"checkpoint root hash is {len(root)} bytes, not 32")
        return cls(origin, int(size_text), root, tuple(extensions))
