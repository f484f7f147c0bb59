"""C2SP tlog-checkpoint: the signed statement "the log with this origin has this many leaves
and this root".

The checkpoint body is the text of a signed note (:mod:`audit.tlog.note`)::

    <origin>\\n                 non-empty; Clearance uses its configured log origin
    <size>\\n                   ASCII decimal, no leading zeros (``0`` for the empty tree)
    <base64 root hash>\\n       standard base64 of the 32-byte RFC 6962 root
    [<extension line>\\n ...]   optional, each non-empty (Clearance writes none)

:func:`open_checkpoint` verifies the note with trusted keys, then parses its body; only then is
the result a :class:`SignedCheckpoint`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import NoteVerificationError, TlogFormatError
from .merkle import HASH_SIZE, MAX_TREE_SIZE
from .note import OpenedNote, Signer, Verifier, open_note, parse_note, sign_note

__all__ = ["Checkpoint", "SignedCheckpoint", "open_checkpoint", "sign_checkpoint"]

_SIZE = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile("[\x00-\x1f]")  # control characters (a newline among them): not in a line


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, size, root hash, and (rarely) extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        what = "checkpoint"
        if not self.origin or _CONTROL.search(self.origin):
            raise TlogFormatError(what, "origin must be a non-empty line")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise TlogFormatError(what, f"size must be an integer in [0, 2**63 - 1], got {self.size!r}")
        if len(self.root_hash) != HASH_SIZE:
            raise TlogFormatError(what, f"root hash must be {HASH_SIZE} bytes, got {len(self.root_hash)}")
        for line in self.extensions:
            if not line or _CONTROL.search(line):
                raise TlogFormatError(what, "extension lines must be non-empty single lines")

    def body(self) -> str:
        """The note text: origin, size and root lines, then the extension lines."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (a note's text, not the whole signed note)."""
        what = "checkpoint"
        if not text.endswith("\n"):
            raise TlogFormatError(what, "body does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise TlogFormatError(what, f"needs origin, size and root hash lines, got {len(lines)} line(s)")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise TlogFormatError(what, "line 1 (origin) is empty")
        if not _SIZE.fullmatch(size_text):
            raise TlogFormatError(what, f"line 2 (size) {size_text!r} is not a decimal without leading zeros")
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise TlogFormatError(what, f"line 2 (size) {size} is larger than 2**63 - 1")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TlogFormatError(what, f"line 3 (root hash) is not base64 ({exc})") from exc
        if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
            raise TlogFormatError(what, f"line 3 (root hash) is not the base64 of a {HASH_SIZE}-byte hash")
        for number, line in enumerate(extensions, 4):
            if not line:
                raise TlogFormatError(what, f"line {number} (extension) is empty")
        return cls(origin, size, root, tuple(extensions))


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint whose note verified with trusted keys.

    ``note``: the whole signed note text as received (all signature lines, so it can be passed
    on with its cosignatures); ``signers``: names of the trusted keys whose signatures verified.
    """

    checkpoint: Checkpoint
    note: str
    signers: tuple[str, ...]

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.checkpoint.root_hash


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> str:
    """The signed note of ``checkpoint`` (the log signs with its key named after the origin)."""
    return sign_note(checkpoint.body(), signers)


def open_checkpoint(note: str | bytes, verifiers: Sequence[Verifier], *, origin: str | None = None) -> SignedCheckpoint:
    """Verify a signed checkpoint with ``verifiers`` and parse it.

    ``origin``: when given, the checkpoint must be for this log. Raises
    :class:`NoteVerificationError` (not signed by a trusted key, or a trusted signature fails,
    or another origin) or :class:`TlogFormatError` (malformed).
    """
    parsed = parse_note(note)
    checkpoint = Checkpoint.parse(parsed.text)  # parse first: a malformed body is a format error
    if origin is not None and checkpoint.origin != origin:
        raise NoteVerificationError("checkpoint origin", expected=origin, found=checkpoint.origin)
    opened: OpenedNote = open_note(parsed, verifiers)
    text = note.decode() if isinstance(note, bytes) else note
    return SignedCheckpoint(checkpoint, text, opened.signer_names)
