"""Errors of the transparency-log formats and proofs.

Every error is an :class:`audit.errors.AuditError`, so the CLI prints its :meth:`diagnostics`
and exits 1. Two families:

* :class:`TlogFormatError` — text or bytes that do not parse (a note, a checkpoint, a key
  string, a tile path, a request body). ``what`` names the thing, the message the rule broken.
* :class:`VerificationError` — well-formed input that fails a check. ``check`` names the check,
  ``expected`` and ``found`` carry the evidence (hashes in hex), as sigstore-python does.
"""

from __future__ import annotations

from audit.errors import AuditError


class TlogError(AuditError):
    """Base class of the errors raised on purpose by ``audit.tlog``."""


class TlogFormatError(TlogError, ValueError):
    """Input that does not follow its format; ``what`` names the format (e.g. ``"checkpoint"``)."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"malformed {what}: {reason}")


class ProofRequestError(TlogError, ValueError):
    """A proof was asked for positions the tree does not have (e.g. leaf index ≥ tree size)."""


class VerificationError(TlogError):
    """A check failed. ``check`` names it; ``expected`` and ``found`` are the evidence."""

    def __init__(self, check: str, *, expected: object = None, found: object = None,
                 detail: str | None = None) -> None:
        self.check = check
        self.expected = expected
        self.found = found
        self.detail = detail
        message = check
        if expected is not None or found is not None:
            message += f": expected {_show(expected)}, found {_show(found)}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class InclusionProofError(VerificationError):
    """An inclusion proof does not prove the leaf is in the tree (RFC 9162 §2.1.3.2)."""


class ConsistencyProofError(VerificationError):
    """A consistency proof does not prove the old tree is a prefix of the new (RFC 9162 §2.1.4.2)."""


class NoteVerificationError(VerificationError):
    """A signed note has no valid signature by a trusted key, or a trusted key's signature fails."""


class ReceiptVerificationError(VerificationError):
    """A receipt fails one of the numbered steps of :func:`audit.tlog.receipt.verify_receipt`."""

    def __init__(self, step: int, check: str, *, expected: object = None, found: object = None,
                 detail: str | None = None) -> None:
        self.step = step
        super().__init__(f"step {step}: {check}", expected=expected, found=found, detail=detail)


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return repr(value) if isinstance(value, str) else str(value)
