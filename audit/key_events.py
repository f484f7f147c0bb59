"""Key changes as entries of the log: who may sign it, who may call the service.

The admin CLI records every signing-key creation, rotation and registration and every API-key
creation and revocation (``kind = "key"``, fields from :func:`audit.entry.key_event_fields`)
through the ordinary writer, so the signed trail shows when each key appeared or went, and by
whose hand. A rotation is signed by the *old* key: the key the verifier already trusts vouches
for its successor.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from .keys import SigningKey
from .log import LogReceipt
from .store import AuditStore
from .tlog.note import Verifier
from .writer import AuditWriter

__all__ = ["actor", "record_key_event"]


def actor() -> str:
    """``user@host`` of the person running the admin command (as the OS knows them)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def record_key_event(store: AuditStore, key: SigningKey, fields: Mapping[str, Any], *,
                     trusted: Sequence[Verifier] | None = None, origin: str | None = None) -> LogReceipt:
    """Append one ``key`` leaf to the v2 log, its batch's checkpoint signed by ``key`` under
    ``origin``; returns once it is durable. ``trusted``: the pinned keys the stored head must
    verify with (default: ``key``'s own).

    Raises :class:`~audit.errors.AuditUnavailable` (nothing recorded) or
    :class:`~audit.errors.AuditEntryInvalid`. The store's role must be allowed to register
    ``key`` if it is not yet registered (the owner's role, as the admin CLI runs).
    """
    with AuditWriter(store, key=key, max_wait=0, trusted=trusted, origin=origin).start() as writer:
        return writer.append(fields)
