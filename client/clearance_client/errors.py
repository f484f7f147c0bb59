"""The client's errors: one small hierarchy, each with a ``diagnostics()`` text.

Every failure to obtain or check a decision is an error, never a decision: an app that catches
``ClearanceError`` and carries on without a model call is failing closed, as it should.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ClearanceError(Exception):
    """Root of every error this package raises."""

    def diagnostics(self) -> str:
        """A paragraph for logs or a terminal: what failed and what to do about it."""
        return f"{type(self).__name__}: {self}"


class Unavailable(ClearanceError):
    """Clearance could not answer (503, 5xx, 429, timeout, connection error).

    No decision exists: treat the call as refused. ``status`` is None for transport errors.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    def diagnostics(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        hint = f"; the server suggests retrying after {self.retry_after:g} s" if self.retry_after else ""
        return (f"Clearance is unavailable ({where}): {self}{hint}. No decision was made, so no model "
                "may be called for this workload until one is.")


class Forbidden(ClearanceError):
    """The API key may not do this (403), e.g. decide for another app."""

    def __init__(self, message: str, *, status: int = 403, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def diagnostics(self) -> str:
        return f"Clearance refused the request (HTTP {self.status}, {self.code or 'forbidden'}): {self}"


class Unauthorized(Forbidden):
    """No key, or a key Clearance does not know or has revoked (401)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, status=401, code=code)

    def diagnostics(self) -> str:
        return (f"Clearance did not accept the API key (HTTP 401, {self.code or 'unauthorized'}): {self}. "
                "Check the key passed as api_key (or CLEARANCE_API_KEY).")


@dataclass(frozen=True)
class FieldError:
    """One field the server rejected, and why."""

    field: str
    reason: str


class InvalidRequest(ClearanceError):
    """The request was rejected as malformed (400, 413, 422); ``fields`` names each bad field."""

    def __init__(self, message: str, *, status: int, code: str | None = None,
                 fields: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.fields = fields

    def diagnostics(self) -> str:
        lines = [f"Clearance rejected the request (HTTP {self.status}, {self.code or 'invalid_request'}): {self}"]
        lines += [f"  {f.field}: {f.reason}" for f in self.fields]
        return "\n".join(lines)


class UnexpectedResponse(ClearanceError):
    """An answer that is not what the API promises (unknown status, malformed decision body)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def diagnostics(self) -> str:
        return (f"Clearance answered something this client cannot read (HTTP {self.status}): {self}. "
                "It is not a decision; no model may be called on it.")


class ReceiptError(ClearanceError):
    """A decision's receipt failed verification; ``check`` names the failing step."""

    def __init__(self, check: str, message: str, *, expected: Any = None, found: Any = None) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.expected = expected
        self.found = found

    def diagnostics(self) -> str:
        text = f"The decision's receipt does not verify. Failed check: {self}"
        if self.expected is not None or self.found is not None:
            text += f"\n  expected: {self.expected!r}\n  found:    {self.found!r}"
        return text + "\nDo not rely on this decision: it is not proven to be in Clearance's audit log."
