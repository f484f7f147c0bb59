"""One small error hierarchy for the audit trail.

Everything ``audit/`` raises on purpose is an :class:`AuditError`, itself a
``clearance.errors.ClearanceError`` (the root shared with ``policy``). Foreign exceptions
(psycopg, SQLAlchemy, ``cryptography``, ``rfc8785``) are mapped into these types at the edge of
the package, so callers (the HTTP service, the CLI) catch one family.

:meth:`AuditError.diagnostics` is the text the CLI prints before exiting 1.
"""

from __future__ import annotations

from clearance.errors import ClearanceError


class AuditError(ClearanceError):
    """Base class of every error the audit package raises on purpose."""

    def diagnostics(self) -> str:
        """A human-readable explanation, printed by the CLI before it exits 1."""
        return f"{type(self).__name__}: {self}"


class AuditUnavailable(AuditError):
    """The audit store cannot durably record entries right now (PostgreSQL down, commit failed).

    Fail closed: a caller that gets this error must not hand out the decision (HTTP 503).
    Nothing of the failed batch was committed.
    """


class WriterClosed(AuditUnavailable):
    """The batching writer is not running (never started, or closed)."""


class SchemaMismatch(AuditError):
    """The database schema is not the revision this code was written for.

    Run ``clearance db upgrade`` (``audit.migrate.upgrade(url)``) and start again.
    """

    def __init__(self, *, expected: str, found: str | None) -> None:
        self.expected = expected
        self.found = found
        super().__init__(
            f"audit schema revision is {found!r}, this code needs {expected!r}; "
            "run `clearance db upgrade` (audit.migrate.upgrade(url)) first"
        )


class AuditEntryInvalid(AuditError, ValueError):
    """The fields submitted for an entry cannot be recorded (missing, reserved or not JSON).

    ``field`` is the dotted path of the offending field in the entry body, when known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DatabaseUrlInvalid(AuditError, ValueError):
    """The database URL is not a PostgreSQL URL the audit trail can use."""


class ExportError(AuditError):
    """An export or an evidence pack cannot be produced or read (names what and why)."""


class SigningKeyError(AuditError):
    """The signing key is missing, malformed or unusable."""


class InsecureKeyFile(SigningKeyError):
    """The private key file can be read by group or others; the service refuses to start."""

    def __init__(self, path: str, mode: int) -> None:
        self.path = path
        self.mode = mode
        super().__init__(
            f"signing key {path} has mode {mode:04o}: group/other may read it; "
            f"run `chmod 600 {path}` (or pass the key in CLEARANCE_SIGNING_KEY)"
        )


class CheckpointError(AuditError):
    """A checkpoint file cannot be read, or its signature does not verify."""


class CheckpointFileError(CheckpointError):
    """A checkpoint file kept outside the database cannot serve: it cannot be read, is not a
    checkpoint (truncated, garbage) or its signature does not verify. ``path`` names the file,
    ``reason`` says what is wrong with it; the message is one line with both."""

    def __init__(self, message: str, *, path: str | None = None, reason: str | None = None) -> None:
        # One positional message, so that the error crosses a process boundary as itself
        # (api/verify_worker.py rebuilds errors from their message).
        super().__init__(message)
        self.path, self.reason = path, reason

    def diagnostics(self) -> str:
        return str(self)
