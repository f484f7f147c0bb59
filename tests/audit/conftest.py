"""Fixtures of the audit tests: a migrated database, a store, a signing key, a running writer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from audit import AuditStore, AuditWriter, SigningKey


@pytest.fixture
def store(migrated_database: str) -> Iterator[AuditStore]:
    audit_store = AuditStore.from_url(migrated_database)
    yield audit_store
    audit_store.dispose()


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def writer(store: AuditStore, signing_key: SigningKey) -> Iterator[AuditWriter]:
    audit_writer = AuditWriter(store, key=signing_key, max_wait=0.002).start()
    yield audit_writer
    audit_writer.close()
