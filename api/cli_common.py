"""What every ``clearance`` command shares: failing with a message, Clearance's errors printed
without a traceback, the database for the duration of a command, the first signing key.

The command modules (``api/cli.py``, ``api/cli_audit.py``, ``api/cli_policy.py``) import these;
this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer

from api.redact import redact
from api.settings import Settings
from clearance.errors import ClearanceError


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``clearance: message`` on stderr and exit with ``code`` (2: the command was misused)."""
    typer.echo(f"clearance: {redact(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Print Clearance's own errors (their ``diagnostics()``) without a traceback, exit 1."""
    try:
        yield
    except ClearanceError as exc:
        fail(exc.diagnostics())


@contextmanager
def database(settings: Settings, *, migrate: bool = False) -> Iterator[str]:
    """The configured database URL, or an embedded server for the duration of the command."""
    from api.services import resolve_database_url

    url, handle = resolve_database_url(settings)
    try:
        if migrate:
            from audit import upgrade

            upgrade(url)
        yield url
    finally:
        if handle is not None:
            handle.cleanup()


def ensure_signing_key(settings: Settings, url: str) -> None:
    """Create ``~/.clearance/signing.key`` when no key is configured at all (first start):
    registered, pinned beside it and recorded in the log, as ``clearance keys init`` does."""
    from api.key_admin import init_signing_key

    if settings.signing_key is not None or settings.key_file().exists():
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    change = init_signing_key(url, settings.key_file(), origin=settings.log_origin)
    typer.echo(f"created signing key {change.key.key_id} at {settings.key_file()} "
               f"(pinned in {change.pinned_file})", err=True)


@contextmanager
def audit_store() -> Iterator[Any]:
    """The configured database's :class:`~audit.AuditStore` (one connection), for audit commands."""
    from audit import AuditStore

    with clean_errors(), database(Settings()) as url:
        store = AuditStore.from_url(url, pool_size=1)
        try:
            yield store
        finally:
            store.dispose()


def pinned_for_cli() -> list[Any]:
    """The verifiers a CLI verification trusts: the pinned keys (CLEARANCE_TRUSTED_KEYS, or
    beside the key file), else the public key of the configured signing key — never the
    database's keyring. Raises ``TrustedKeysError`` when there is neither."""
    from api.pinned import pinned_or_own, pinned_verifiers
    from api.services import load_key

    settings = Settings()
    pinned = pinned_verifiers(settings)
    if pinned.configured:
        return list(pinned.verifiers)
    has_key = settings.signing_key is not None or settings.key_file().exists()
    return list(pinned_or_own(settings, load_key(settings).public if has_key else None).verifiers)
