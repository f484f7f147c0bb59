"""C2SP tlog-proof (``c2sp.org/tlog-proof@v1``): one entry's offline proof of inclusion.

::

    c2sp.org/tlog-proof@v1
    [extra <base64 opaque data>]
    index <zero-based leaf index, decimal>
    <base64 inclusion proof hash>       zero or more, leaf's sibling first
    <empty line>
    <signed checkpoint note, verbatim, with any witness cosignatures>

Files use the extension ``.tlog-proof``. The leaf hash is the application's business (for
Clearance, the leaf hash of the entry body that accompanies the proof).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .checkpoint import SignedCheckpoint, open_checkpoint
from .cosignature import verified_cosignatures
from .errors import InclusionProofError, NoteVerificationError, TlogFormatError
from .merkle import HASH_SIZE, root_from_inclusion_proof
from .note import Verifier

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_LINES = 63
_INDEX = re.compile(r"index (0|[1-9][0-9]{0,18})")

__all__ = ["TlogProof", "parse_tlog_proof", "verify_tlog_proof"]


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed proof; :attr:`checkpoint` is the note text, not verified until :func:`verify_tlog_proof`."""

    index: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def format(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.inclusion_proof]
        return "\n".join(lines) + "\n\n" + self.checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a tlog-proof; :class:`TlogFormatError` names the line that is wrong."""
    what = "tlog-proof"
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise TlogFormatError(what, "no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogFormatError(what, f"line 1 is not {HEADER!r}")
    rest, extra = lines[1:], None
    if rest and rest[0].startswith("extra "):
        try:
            extra = base64.b64decode(rest[0][6:], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TlogFormatError(what, "line 2 (extra) is not base64") from exc
        rest = rest[1:]
    match = _INDEX.fullmatch(rest[0]) if rest else None
    if not match:
        raise TlogFormatError(what, "expected 'index <decimal, no leading zeros>' after the header")
    hashes = rest[1:]
    if len(hashes) > MAX_PROOF_LINES:
        raise TlogFormatError(what, f"{len(hashes)} inclusion proof lines, at most {MAX_PROOF_LINES}")
    proof = []
    first = len(lines) - len(hashes) + 1
    for number, line in enumerate(hashes, first):
        try:
            value = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            value = b""
        if len(value) != HASH_SIZE or base64.b64encode(value).decode() != line:
            raise TlogFormatError(what, f"line {number} is not the base64 of a {HASH_SIZE}-byte hash")
        proof.append(value)
    return TlogProof(int(match.group(1)), tuple(proof), checkpoint, extra)


def verify_tlog_proof(proof: TlogProof | str, *, leaf_hash: bytes, log_verifiers: Sequence[Verifier],
                      origin: str | None = None, witnesses: Sequence[Verifier] = (),
                      min_cosignatures: int = 0) -> SignedCheckpoint:
    """The spec's verification, given the leaf hash the application computed (its step 1).

    2. The checkpoint is for an acceptable ``origin`` and signed by one of ``log_verifiers``.
    3. At least ``min_cosignatures`` of ``witnesses`` cosigned it.
    4. The inclusion proof binds ``leaf_hash`` at ``index`` to the checkpoint's root.

    Raises :class:`NoteVerificationError`, :class:`InclusionProofError` or :class:`TlogFormatError`.
    """
    parsed = parse_tlog_proof(proof) if isinstance(proof, str) else proof
    # (2): origin and log signature
    signed = open_checkpoint(parsed.checkpoint, log_verifiers, origin=origin)
    # (3): witness cosignatures
    if min_cosignatures:
        found = len(verified_cosignatures(parsed.checkpoint, witnesses))
        if found < min_cosignatures:
            raise NoteVerificationError("valid witness cosignatures", expected=f">= {min_cosignatures}", found=found)
    # (4): inclusion
    if parsed.index >= signed.size:
        raise InclusionProofError("leaf index < tree size", expected=f"< {signed.size}", found=parsed.index)
    root = root_from_inclusion_proof(leaf_hash=leaf_hash, index=parsed.index, size=signed.size,
                                     proof=parsed.inclusion_proof)
    if root != signed.root_hash:
        raise InclusionProofError("root computed from the inclusion proof", expected=signed.root_hash, found=root)
    return signed

