"""Fixtures of the audit tests: a migrated database, a store, a signing key, a running writer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from audit import AuditStore, AuditWriter, SigningKey


def _opened_store(url: str) -> Iterator[AuditStore]:
    audit_store = AuditStore.from_url(url)
    yield audit_store
    audit_store.dispose()


@pytest.fixture
def store(migrated_database: str) -> Iterator[AuditStore]:
    yield from _opened_store(migrated_database)


@pytest.fixture
def other_store(migrated_database: str) -> Iterator[AuditStore]:
    """A second store on the same database: another worker process's connections."""
    yield from _opened_store(migrated_database)


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    """Where a writer's checkpoint file goes (its directory not made yet)."""
    return tmp_path / "outside" / "checkpoint"


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def writer(store: AuditStore, signing_key: SigningKey) -> Iterator[AuditWriter]:
    audit_writer = AuditWriter(store, key=signing_key, max_wait=0.002).start()
    yield audit_writer
    audit_writer.close()
