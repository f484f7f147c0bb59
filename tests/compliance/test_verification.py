"""Verification of a database range: the fast reader and worker processes give the answer of a
sequential walk — same validity, first bad seq, check and count — and stay strict."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import audit.verify as verify_module
from audit import AuditStore, AuditWriter, CheckpointPolicy, SigningKey, verify_database
from audit.chain import encode_members
from audit.entry import prepare_fields
from audit.logverify import verify_log
from audit.trust import log_verifier
from audit.canonical import canonical_bytes
from tests.audit.helpers import superuser, triggers_disabled
from tests.compliance.conftest import dataset_fields

ENTRIES = 40


@pytest.fixture
def store(migrated_database: str) -> Iterator[AuditStore]:
    """A v1 chain of ENTRIES entries (batches of 8): the v1 verifier keeps verifying it."""
    audit_store = AuditStore.from_url(migrated_database)
    key = SigningKey.generate()
    audit_store.register_key(key.public)
    fields = [encode_members(prepare_fields(dataset_fields(i))) for i in range(ENTRIES)]
    for start in range(0, ENTRIES, 8):
        audit_store.append_v1_batch(fields[start:start + 8], key=key,
                                    checkpoints=CheckpointPolicy(every_entries=10, every_seconds=10**9))
    yield audit_store
    audit_store.dispose()


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel from 1 entry per worker, in slices of 7, so that 40 entries make 6 slices."""
    monkeypatch.setattr(verify_module, "PARALLEL_MIN_ENTRIES", 1)
    monkeypatch.setattr(verify_module, "SLICE_ENTRIES", 7)


def _both(store: AuditStore, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return (verify_database(store, workers=1, **kwargs).to_dict(),
            verify_database(store, workers=2, **kwargs).to_dict())


@pytest.mark.slow
def test_workers_agree_with_one_process(store: AuditStore, migrated_database: str, small_slices: None) -> None:
    calls: list[int] = []
    parallel = verify_database(store, workers=2, progress=lambda done, total: calls.append(done))
    assert parallel.valid and parallel.checked == ENTRIES
    assert parallel.to_dict() == verify_database(store).to_dict()
    assert calls[-1] == ENTRIES and len(calls) >= 6
    sequential, parallel_dict = _both(store, from_seq=9, to_seq=33)
    assert sequential == parallel_dict and sequential["checked"] == 25

    with superuser(migrated_database) as conn, triggers_disabled(conn):
        conn.execute("UPDATE audit_entries SET app_id = 'someone-else' WHERE seq = 30")
        conn.execute("DELETE FROM audit_entries WHERE seq = 22")
    sequential, parallel_dict = _both(store)
    assert sequential == parallel_dict
    assert (sequential["valid"], sequential["first_bad_seq"], sequential["check"], sequential["checked"]) == (
        False, 22, "missing", 21)


def test_the_views_body_json_is_the_signed_body(store: AuditStore, migrated_database: str) -> None:
    """Nothing to verify: the view parses the signed bytes on every read (canonicalised again,
    its JSONB gives back those bytes exactly), and follows them when they change."""
    with superuser(migrated_database) as conn:
        rows = conn.execute("SELECT body, body_json FROM audit_entries_json ORDER BY seq").fetchall()
        assert len(rows) == ENTRIES
        assert all(canonical_bytes(derived) == body for body, derived in rows)
        with triggers_disabled(conn):
            conn.execute("UPDATE audit_entries SET body = convert_to(jsonb_set("
                         "convert_from(body, 'UTF8')::jsonb, '{outcome}', '\"forged\"')::text, "
                         "'UTF8') WHERE seq = 4")
        assert conn.execute("SELECT body_json->>'outcome' FROM audit_entries_json "
                            "WHERE seq = 4").fetchone() == ("forged",)
    result = verify_database(store)
    assert (result.valid, result.first_bad_seq, result.check) == (False, 4, "entry_hash")


def test_bytes_that_are_not_json_are_named_not_raised(store: AuditStore, migrated_database: str) -> None:
    with superuser(migrated_database) as conn, triggers_disabled(conn):
        conn.execute("UPDATE audit_entries SET body = '\\xfffe00'::bytea WHERE seq = 17")
    result = verify_database(store)
    assert (result.valid, result.first_bad_seq, result.check, result.checked) == (False, 17, "body", 16)


def test_the_v2_log_over_a_v1_chain_verifies_ranges_and_names_tampering(store: AuditStore,
                                                                         migrated_database: str) -> None:
    key = SigningKey.generate()
    with AuditWriter(store, key=key, max_batch=8) as writer:
        for i in range(ENTRIES - 1):
            writer.submit(dataset_fields(i))
        writer.append(dataset_fields(ENTRIES))
    trusted = [log_verifier(key.public, store.log_origin())]
    whole = verify_log(store, trusted=trusted)
    assert whole.valid and whole.checked == ENTRIES + 1  # and the leaf recording the v1 head
    ranged = verify_log(store, trusted=trusted, from_seq=9, to_seq=33)
    assert ranged.valid and ranged.checked == 25
    with superuser(migrated_database) as conn, triggers_disabled(conn):
        conn.execute("UPDATE audit_leaves SET app_id = 'someone-else' WHERE seq = 30")
        conn.execute("DELETE FROM audit_leaves WHERE seq = 22")
    result = verify_log(store, trusted=trusted)
    assert (result.valid, result.first_bad_seq, result.check, result.checked) == (False, 22, "missing", 21)
