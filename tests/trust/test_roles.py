"""``clearance db grant``: the service's role may append and read, and change no key.

Every refusal here comes from PostgreSQL itself, with a real second role logged in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from audit import AuditStore, AuditWriter, SigningKey
from audit.roles import LeastPrivilegeStore, RoleError, apply_service_grants, excess_privileges, role_report
from audit.store import AuditStore as _Store
from tests.audit.helpers import decision_fields
from tests.conftest import _libpq
from tests.trust.conftest import as_role


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(_libpq(url), autocommit=True)


def test_grant_creates_a_role_that_may_append_and_read_only(migrated_database: str, role_name: str) -> None:
    report = apply_service_grants(migrated_database, role_name)
    assert report.created
    assert "SELECT on audit_signing_keys" in report.granted
    with _connect(as_role(migrated_database, role_name)) as conn:
        assert conn.execute("SELECT count(*) FROM audit_signing_keys").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (0,)
        for statement in (
            "INSERT INTO audit_signing_keys (key_id, public_key) VALUES ('x', decode(repeat('00', 32), 'hex'))",
            "UPDATE api_keys SET revoked_at = NULL",
            "INSERT INTO api_keys (key_id, secret_sha256, role, created_at) "
            "VALUES ('0123456789abcdef', decode(repeat('00', 32), 'hex'), 'admin', now())",
            "DELETE FROM api_keys",
            "TRUNCATE audit_checkpoints",
            "UPDATE audit_chain_head SET log_id = gen_random_uuid()",
            "CREATE TABLE audit_signing_keys_2 (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_grant_is_idempotent_and_tightens_an_existing_role(migrated_database: str, role_name: str) -> None:
    with _connect(migrated_database) as conn:  # a role as migration 0002 left clearance_app
        conn.execute(f'CREATE ROLE "{role_name}" LOGIN')
        conn.execute(f'GRANT SELECT, INSERT ON audit_signing_keys TO "{role_name}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE (revoked_at) ON api_keys TO "{role_name}"')
    first = apply_service_grants(migrated_database, role_name)
    second = apply_service_grants(migrated_database, role_name)
    assert not first.created and not second.created and first.granted == second.granted
    with _connect(as_role(migrated_database, role_name)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE api_keys SET revoked_at = NULL")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO audit_signing_keys (key_id, public_key) "
                         "VALUES ('x', decode(repeat('00', 32), 'hex'))")


@contextmanager
def _member_of(url: str, role_name: str, grant: str) -> Iterator[str]:
    """``role_name`` (LOGIN) as a member of a helper role holding ``grant`` (``GRANT … TO {}``)."""
    helper = role_name + "_p"
    with _connect(url) as conn:
        conn.execute(f'CREATE ROLE "{helper}" NOLOGIN')
        conn.execute(grant.format(f'"{helper}"'))
        conn.execute(f'CREATE ROLE "{role_name}" LOGIN IN ROLE "{helper}"')
    try:
        yield helper
    finally:
        with _connect(url) as conn:
            conn.execute(f'DROP OWNED BY "{helper}"')
            conn.execute(f'DROP ROLE "{helper}"')


def test_grant_refuses_a_role_that_inherits_more(migrated_database: str, role_name: str) -> None:
    with _member_of(migrated_database, role_name, "GRANT INSERT ON audit_signing_keys TO {}") as helper:
        with pytest.raises(RoleError, match=f"INSERT on audit_signing_keys.*membership of {helper}"):
            apply_service_grants(migrated_database, role_name)


def test_grant_refuses_bad_names_and_superusers(migrated_database: str, role_name: str) -> None:
    with pytest.raises(RoleError, match="role name"):
        apply_service_grants(migrated_database, 'x"; DROP TABLE api_keys; --')
    with pytest.raises(RoleError, match="owns the tables or runs this command"):
        apply_service_grants(migrated_database, "postgres")


def test_grant_as_a_non_owner_is_refused(migrated_database: str, role_name: str) -> None:
    apply_service_grants(migrated_database, role_name)
    with pytest.raises(RoleError, match="run this as the owner"):
        apply_service_grants(as_role(migrated_database, role_name), role_name + "x")


def test_the_service_role_still_decides_and_records(migrated_database: str, role_name: str) -> None:
    """The writer starts as the service role when the owner registered its key, and appends."""
    with _as_service(migrated_database, role_name) as (store, key):
        report = role_report(store.engine)
        assert (report.superuser, report.owner, report.excess) == (False, False, ())
        assert report.warning() is None
        with AuditWriter(store, key=key, max_wait=0.001).start() as writer:
            receipts = [writer.append(decision_fields(i)) for i in range(3)]
        assert [r.seq for r in receipts] == [1, 2, 3]


@contextmanager
def _as_service(url: str, role_name: str) -> Iterator[tuple[AuditStore, SigningKey]]:
    """A store connected as the granted service role, and a signing key the owner registered."""
    apply_service_grants(url, role_name)
    key = SigningKey.generate()
    owner = AuditStore.from_url(url, pooled=False)
    owner.register_key(key.public)
    owner.dispose()
    store = LeastPrivilegeStore.from_url(as_role(url, role_name), pool_size=2)
    try:
        yield store, key
    finally:
        store.dispose()


def test_the_service_role_cannot_register_its_own_key(migrated_database: str, role_name: str) -> None:
    apply_service_grants(migrated_database, role_name)
    store = LeastPrivilegeStore.from_url(as_role(migrated_database, role_name), pooled=False)
    try:
        from audit import SigningKeyError

        with pytest.raises(SigningKeyError, match="clearance keys register"):
            AuditWriter(store, key=SigningKey.generate()).start()
    finally:
        store.dispose()


def test_role_report_warns_about_the_owner(migrated_database: str) -> None:
    store = _Store.from_url(migrated_database, pooled=False)
    try:
        report = role_report(store.engine)
    finally:
        store.dispose()
    assert report.superuser or report.owner
    assert "clearance db grant" in (report.warning() or "")


PARTITIONS_SQL = ("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_entries'::regclass")
MANY_PARTITIONS_SQL = "SELECT audit_ensure_partitions(0, 240)"  # twenty years of v1 partitions, as the owner


@pytest.mark.parametrize("how", ["db grant", "clearance_app"])
def test_the_service_role_cannot_create_v1_partitions(migrated_database: str, role_name: str, how: str) -> None:
    """``audit_ensure_partitions`` is SECURITY DEFINER: whoever may call it runs DDL as the owner,
    and each partition takes an ACCESS EXCLUSIVE lock on ``audit_entries``, which every
    verification reads. The service inserts nothing there since v2, so its role may not call it
    (migration 0013 for ``clearance_app``; ``db grant`` for a role of one's own)."""
    if how == "db grant":
        apply_service_grants(migrated_database, role_name)
    else:
        with _connect(migrated_database) as conn:
            conn.execute(f'CREATE ROLE "{role_name}" LOGIN IN ROLE clearance_app')
    with _connect(migrated_database) as owner:
        before = owner.execute(PARTITIONS_SQL).fetchone()
    with _connect(as_role(migrated_database, role_name)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(MANY_PARTITIONS_SQL)
        assert excess_privileges(conn, role_name) == []
    with _connect(migrated_database) as owner:
        assert owner.execute(PARTITIONS_SQL).fetchone() == before


def test_grant_refuses_a_role_that_inherits_a_definer_function(migrated_database: str, role_name: str) -> None:
    grant = "GRANT EXECUTE ON FUNCTION audit_ensure_partitions(integer, integer) TO {}"
    with _member_of(migrated_database, role_name, grant) as helper:
        with pytest.raises(RoleError, match=rf"EXECUTE on audit_ensure_partitions\(integer,integer\).*membership of {helper}"):
            apply_service_grants(migrated_database, role_name)


def test_a_session_of_the_service_role_holding_the_head_is_named(
        migrated_database: str, role_name: str, caplog: pytest.LogCaptureFixture) -> None:
    """The insider with the service's own credentials keeps the log head locked (its role may
    update the head, so it may lock it): the writer, as that role, waits and its decisions fail
    closed, and the log names the session that holds it (audit/head_watch.py)."""
    import logging
    import time

    caplog.set_level(logging.WARNING, logger="audit.head_watch")
    with _as_service(migrated_database, role_name) as (store, key):
        with AuditWriter(store, key=key, stalled_after=0.3).start() as writer:
            with psycopg.connect(_libpq(as_role(migrated_database, role_name))) as insider:
                insider.execute("SET application_name = 'not-the-service'")
                insider.execute("SELECT 1 FROM audit_tlog_head WHERE id = 1 FOR UPDATE")
                held = writer.submit(decision_fields(0))
                deadline = time.monotonic() + 10
                while not caplog.records and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert not held.done()
                named = caplog.records[0].getMessage()
                assert f"pid {insider.info.backend_pid}" in named and f"user {role_name}" in named
                assert "'not-the-service'" in named and "idle in transaction" in named
                insider.rollback()
            assert held.result(10).seq == 1
