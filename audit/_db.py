"""Private helpers of the store and ``audit.migrate``: database URLs, and psycopg/SQLAlchemy errors
mapped to :class:`~audit.errors.AuditUnavailable` at this edge."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from .errors import AuditUnavailable, DatabaseUrlInvalid



def sqlalchemy_url(url: str | URL) -> URL:
    """Accept ``postgresql://`` / ``postgres://`` too and use the psycopg (v3) driver."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1) if isinstance(url, str) else url)
    except sa_exc.ArgumentError as exc:
        raise DatabaseUrlInvalid(f"the database URL cannot be parsed: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise DatabaseUrlInvalid(
            f"the audit trail needs PostgreSQL through psycopg 3 "
            f"(postgresql+psycopg://...), got {parsed.drivername!r}"
        )
    return parsed


@contextlib.contextmanager
def map_errors(doing: str) -> Iterator[None]:
    """Turn psycopg/SQLAlchemy errors into :class:`AuditUnavailable` naming what failed."""
    try:
        yield
    except (sa_exc.SQLAlchemyError, psycopg.Error, OSError) as exc:
        detail = getattr(exc, "orig", None) or exc
        first_line = str(detail).strip().splitlines()[0] if str(detail).strip() else repr(detail)
        raise AuditUnavailable(f"{doing} failed: {type(detail).__name__}: {first_line}") from exc
