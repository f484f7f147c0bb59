"""The admin path for keys: every change pinned, registered and recorded in the log.

``clearance keys init|rotate|register`` and ``clearance apikeys create|revoke`` call these,
connected with the tables' owner role (the service's role may change no key: audit/roles.py).
Each change appends a ``key`` entry (audit/entry.py, ``key_event_fields``) signed with the
configured signing key — for a rotation, with the old key, which vouches for the new one. An
API key is committed only once its entry is durable: a key that works is a key in the log.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from api.apikeys import Principal
from api.pinned import pinned_or_own
from api.settings import Settings
from audit import AuditStore, Receipt, SigningKey, init_key, load_signing_key, rotate_key
from audit.entry import key_event_fields
from audit.key_events import actor, record_key_event
from audit.trust import load_trusted_keys, pin_key, pin_note, trusted_keys_path_for, verifier_for


@dataclass(frozen=True)
class SigningKeyChange:
    """A signing key created, rotated or registered: the key, its pinned line and file, the
    entry that records it, and (rotation) the retired key file."""

    key: SigningKey
    verifier_key: str
    pinned_file: Path
    receipt: Receipt
    retired: Path | None = None


def _signing_fields(event: str, key: SigningKey, origin: str, previous: str | None = None) -> dict[str, object]:
    return key_event_fields(
        event=event, key_id=key.key_id, actor=actor(),
        public_key=base64.b64encode(key.public.raw).decode(),
        verifier_key=verifier_for(key.public, origin).verifier_key, previous_key_id=previous)


def _pin(key: SigningKey, pinned_file: Path, origin: str, what: str) -> str:
    verifier = verifier_for(key.public, origin)
    pin_key(pinned_file, verifier, note=pin_note(key.public, what))
    return verifier.verifier_key


def init_signing_key(url: str, path: Path, *, origin: str) -> SigningKeyChange:
    """Create a key file at ``path``, register it, pin it in ``<path>.trusted``, record it."""
    store = AuditStore.from_url(url, pooled=False)
    try:
        key = init_key(path, registry=store)
        pinned = trusted_keys_path_for(path)
        line = _pin(key, pinned, origin, "created")
        receipt = record_key_event(store, key, _signing_fields("signing_key_created", key, origin),
                                   trusted=load_trusted_keys(pinned), origin=origin)
    finally:
        store.dispose()
    return SigningKeyChange(key, line, pinned, receipt)


def rotate_signing_key(url: str, path: Path, *, origin: str) -> SigningKeyChange:
    """Replace the key at ``path``; pin the new one beside it (old lines stay) and record the
    rotation signed by the old key."""
    store = AuditStore.from_url(url, pooled=False)
    try:
        key, retired = rotate_key(path, registry=store)
        old = load_signing_key(retired)
        pinned = trusted_keys_path_for(path)
        _pin(old, pinned, origin, "pinned before its rotation")  # a file from before pinning
        line = _pin(key, pinned, origin, f"rotated from {old.key_id}")
        receipt = record_key_event(store, old, _signing_fields("signing_key_rotated", key, origin, old.key_id),
                                   trusted=load_trusted_keys(pinned), origin=origin)
    finally:
        store.dispose()
    return SigningKeyChange(key, line, pinned, receipt, retired)


def register_signing_key(url: str, key: SigningKey, pinned: Path, *, origin: str) -> SigningKeyChange:
    """Register an existing key (e.g. from ``CLEARANCE_SIGNING_KEY``), pin it in ``pinned``,
    record it: what a service running under ``clearance db grant`` needs before it starts."""
    store = AuditStore.from_url(url, pooled=False)
    try:
        store.register_key(key.public)
        line = _pin(key, pinned, origin, "registered")
        receipt = record_key_event(store, key, _signing_fields("signing_key_registered", key, origin),
                                   trusted=load_trusted_keys(pinned), origin=origin)
    finally:
        store.dispose()
    return SigningKeyChange(key, line, pinned, receipt)


class ApiKeyRecorder:
    """Appends the ``key`` entry of an API-key change, inside the key's own transaction: pass
    :meth:`created` / :meth:`revoked` as ``record`` to ``api.apikeys.create_key`` /
    ``revoke_key``; the key change commits only once its entry is durable."""

    def __init__(self, url: str, key: SigningKey) -> None:
        self._url, self._key = url, key
        self.receipt: Receipt | None = None

    def _record(self, event: str, principal: Principal, label: str | None) -> None:
        settings = Settings()
        store = AuditStore.from_url(self._url, pooled=False)
        try:
            self.receipt = record_key_event(store, self._key, key_event_fields(
                event=event, key_id=principal.key_id, actor=actor(), role=principal.role.value,
                app_id=principal.app_id, apps=sorted(principal.apps) or None,
                gateway=principal.gateway, label=label),
                trusted=pinned_or_own(settings, self._key.public).verifiers, origin=settings.log_origin)
        finally:
            store.dispose()

    def created(self, principal: Principal, label: str | None) -> None:
        self._record("api_key_created", principal, label)

    def revoked(self, principal: Principal, label: str | None) -> None:
        self._record("api_key_revoked", principal, label)
