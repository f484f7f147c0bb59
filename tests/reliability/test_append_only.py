"""Append-only in the database itself, whatever the session does.

As the application's role (``SET ROLE clearance_app``, and as the documented login role that is
a member of it), UPDATE, DELETE and TRUNCATE on every audit table fail: the v2 log's
(``audit_blobs``, ``audit_leaves``, ``audit_tlog_nodes``, ``audit_tlog_checkpoints``,
``audit_tlog_head``, whose size never moves back) and the read-only v1 chain's (``audit_entries``
and its partitions, ``audit_checkpoints``, ``audit_signing_keys``, ``audit_chain_head``). The role
may not switch to ``session_replication_role = replica``; where it is allowed to (PostgreSQL's
``GRANT SET ON PARAMETER``), and even for a role carelessly granted UPDATE/DELETE/TRUNCATE, the
guards still fire: every audit trigger is ``ENABLE ALWAYS``.

Runs on this session's own PostgreSQL: roles and parameter grants are cluster-wide, and the
machine's shared server is never reconfigured.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from audit import AuditStore, AuditWriter, SigningKey, upgrade
from audit.chain import encode_members
from audit.entry import prepare_fields
from tests.audit.helpers import decision_fields

from .cluster import PgCluster

APP = "clearance_app"
CARELESS = "clearance_careless"  # a role with every privilege the app role rightly lacks
V1 = ("audit_entries", "audit_checkpoints", "audit_signing_keys", "audit_chain_head")
V2 = ("audit_blobs", "audit_leaves", "audit_tlog_nodes", "audit_tlog_checkpoints", "audit_tlog_head")
GUARDED = (*V2, *V1)
HEADS = ("audit_chain_head", "audit_tlog_head")
V1_ENTRIES = 5
# Past one full tile of 256 leaves, so that audit_tlog_nodes holds a row for UPDATE/DELETE to hit.
DECISIONS = 260
LEAVES = DECISIONS + 1  # and the first leaf, recording the v1 head


@pytest.fixture(scope="module")
def trail(own_cluster: PgCluster) -> Iterator[str]:
    """A database on our own server with a v1 chain of five entries (a trail written before the
    upgrade) and a v2 log after it: a row in every table; yields its name."""
    name = f"append_only_{uuid.uuid4().hex[:8]}"
    url = own_cluster.create_database(name)
    upgrade(url)
    store = AuditStore.from_url(url)
    try:
        key = SigningKey.generate()
        store.append_v1_batch([encode_members(prepare_fields(decision_fields(i))) for i in range(V1_ENTRIES)],
                              key=key, checkpoints=None)
        store.checkpoint(key=key, force=True)
        with AuditWriter(store, key=key) as writer:
            for i in range(DECISIONS):
                writer.append(decision_fields(i))
    finally:
        store.dispose()
    with psycopg.connect(own_cluster.libpq(name), autocommit=True) as conn:
        partitions = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_entries'::regclass")]
        conn.execute(f"DROP ROLE IF EXISTS {CARELESS}")
        conn.execute(f"CREATE ROLE {CARELESS} NOLOGIN")
        for table in (*GUARDED, *partitions):
            conn.execute(f"GRANT ALL ON {table} TO {CARELESS}")
        # The documented production login: a member of clearance_app acting as it.
        conn.execute("DROP ROLE IF EXISTS clearance_service")
        conn.execute(f"CREATE ROLE clearance_service LOGIN IN ROLE {APP}")
        conn.execute(f"ALTER ROLE clearance_service SET role = '{APP}'")
    yield name


def _tables(cluster: PgCluster, name: str) -> dict[str, int]:
    """Every guarded table and partition, with how many rows it holds."""
    with psycopg.connect(cluster.libpq(name)) as conn:
        partitions = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_entries'::regclass ORDER BY 1")]
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
                for t in (*GUARDED, *partitions)}


def _statements(table: str, rows: int) -> list[str]:
    """What would change history in ``table``. A row trigger has nothing to refuse in an empty
    partition (UPDATE/DELETE touch no row), so those get only TRUNCATE (a statement trigger)."""
    if table == "audit_chain_head":
        return ["UPDATE audit_chain_head SET seq = 0", "UPDATE audit_chain_head SET log_id = gen_random_uuid()",
                "DELETE FROM audit_chain_head", "TRUNCATE audit_chain_head"]
    if table == "audit_tlog_head":
        return ["UPDATE audit_tlog_head SET size = 0", "UPDATE audit_tlog_head SET origin = 'elsewhere'",
                "DELETE FROM audit_tlog_head", "TRUNCATE audit_tlog_head"]
    column = {"audit_signing_keys": "created_at = now()", "audit_checkpoints": "key_id = 'x'",
              "audit_blobs": "sector = 'forged'", "audit_tlog_nodes": "hash = sha256(hash)",
              "audit_tlog_checkpoints": "note = 'forged'"}.get(table, "outcome = 'allow'")
    # CASCADE: a plain TRUNCATE of the blobs fails on the leaves' foreign key before any trigger.
    truncate = f"TRUNCATE {table} CASCADE" if table == "audit_blobs" else f"TRUNCATE {table}"
    return [*([f"UPDATE {table} SET {column}", f"DELETE FROM {table}"] if rows else []), truncate]


def _refused(conn: psycopg.Connection[Any], statement: str) -> type[Exception]:
    with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)) as caught:
        conn.execute(statement)
    return caught.type


def _unchanged(cluster: PgCluster, name: str) -> None:
    """Still the five v1 entries with their head, checkpoint and key, and the whole v2 log: its
    leaves, blobs, stored subtree, one checkpoint per batch, its head at the last leaf."""
    with psycopg.connect(cluster.libpq(name)) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM audit_entries), (SELECT seq FROM audit_chain_head), "
                              "(SELECT count(*) > 0 FROM audit_checkpoints), (SELECT count(*) FROM audit_signing_keys),"
                              "(SELECT count(*) FROM audit_entries WHERE outcome = 'allow')").fetchone()
        log = conn.execute("SELECT (SELECT count(*) FROM audit_leaves), (SELECT size FROM audit_tlog_head), "
                           "(SELECT count(*) FROM audit_tlog_checkpoints), (SELECT count(*) FROM audit_tlog_nodes), "
                           "(SELECT count(*) FROM audit_blobs WHERE sector = 'forged'), "
                           "(SELECT count(*) FROM audit_leaves WHERE outcome = 'allow')").fetchone()
    assert counts == (V1_ENTRIES, V1_ENTRIES, True, 1, 3), counts
    allowed = sum(1 for i in range(DECISIONS) if decision_fields(i)["outcome"] == "allow")
    # One checkpoint per batch; each append here is its own batch, the first with the v1-head leaf.
    assert log == (LEAVES, LEAVES, DECISIONS, 1, 0, allowed), log


def test_the_application_role_cannot_change_history(own_cluster: PgCluster, trail: str) -> None:
    tables = _tables(own_cluster, trail)
    assert len(tables) >= 13  # the five v2 tables, the four v1 ones, its monthly partitions and default
    assert all(tables[t] for t in GUARDED), tables  # a row in every table: UPDATE and DELETE have a target
    with psycopg.connect(own_cluster.libpq(trail), autocommit=True) as conn:
        conn.execute(f"SET ROLE {APP}")
        for table, rows in tables.items():
            for statement in _statements(table, rows):
                _refused(conn, statement)
        # Nor switch the guards off, nor drop them.
        for statement in ("ALTER TABLE audit_entries DISABLE TRIGGER USER",
                          "ALTER TABLE audit_entries DISABLE TRIGGER audit_append_only",
                          "DROP TRIGGER audit_append_only ON audit_entries",
                          "ALTER TABLE audit_entries DETACH PARTITION audit_entries_default",
                          "DROP TABLE audit_checkpoints",
                          *(f"ALTER TABLE {t} DISABLE TRIGGER USER" for t in V2),
                          *(f"DROP TRIGGER audit_append_only ON {t}" for t in V2 if t != "audit_tlog_head"),
                          "DROP TRIGGER audit_tlog_head_guard ON audit_tlog_head",
                          *(f"DROP TABLE {t}" for t in V2), "DROP VIEW audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # The view the queries read is no way in: a join, so never updatable.
        for statement in ("UPDATE audit_log SET outcome = 'allow'", "DELETE FROM audit_log"):
            with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectNotInPrerequisiteState)):
                conn.execute(statement)
        # The v1 head is read-only for the role (migration 0010); the v2 head it may move
        # forward, but moving it back is refused by its trigger even with the UPDATE grant.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE audit_chain_head SET seq = 1")
        with pytest.raises(psycopg.errors.RaiseException, match="cannot move back"):
            conn.execute("UPDATE audit_tlog_head SET size = 1")
    _unchanged(own_cluster, trail)


def test_the_application_role_may_not_enter_replica_mode(own_cluster: PgCluster, trail: str) -> None:
    with psycopg.connect(own_cluster.libpq(trail), autocommit=True) as conn:
        conn.execute(f"SET ROLE {APP}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="session_replication_role"):
            conn.execute("SET session_replication_role = replica")
    with psycopg.connect(own_cluster.libpq(trail) + " user=clearance_service", autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (APP,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SET session_replication_role = replica")
        for table in ("audit_leaves", "audit_tlog_head", "audit_entries"):
            for statement in _statements(table, 1):
                _refused(conn, statement)


@pytest.mark.parametrize("role", [APP, CARELESS, "superuser"])
def test_replica_mode_does_not_bypass_the_guards(own_cluster: PgCluster, trail: str, role: str) -> None:
    """Where a role may set replica mode — granted the parameter, or superuser — the
    ENABLE ALWAYS triggers still refuse; with UPDATE/DELETE/TRUNCATE granted too, it is the
    trigger (not a missing grant) that stops it."""
    with psycopg.connect(own_cluster.libpq(trail), autocommit=True) as conn:
        if role != "superuser":
            conn.execute(f"GRANT SET ON PARAMETER session_replication_role TO {role}")
        try:
            if role != "superuser":
                conn.execute(f"SET ROLE {role}")
            conn.execute("SET session_replication_role = replica")
            assert conn.execute("SHOW session_replication_role").fetchone() == ("replica",)
            for table, rows in _tables(own_cluster, trail).items():
                for statement in _statements(table, rows):
                    kind = _refused(conn, statement)
                    if role != APP and "log_id" not in statement:
                        assert kind is psycopg.errors.RaiseException, statement
        finally:
            conn.execute("RESET ROLE")
            conn.execute("RESET session_replication_role")
            if role != "superuser":
                conn.execute(f"REVOKE SET ON PARAMETER session_replication_role FROM {role}")
    _unchanged(own_cluster, trail)


def test_every_guard_trigger_fires_always(own_cluster: PgCluster, trail: str) -> None:
    with psycopg.connect(own_cluster.libpq(trail)) as conn:
        rows = conn.execute(
            "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgname LIKE 'audit%'").fetchall()
    by_table: dict[str, dict[str, str]] = {}
    for table, trigger, enabled in rows:
        by_table.setdefault(table, {})[trigger] = enabled
    for table in _tables(own_cluster, trail):
        expected = ({f"{table}_guard", "audit_no_truncate"} if table in HEADS
                    else {"audit_append_only", "audit_no_truncate"})
        assert set(by_table.get(table, {})) >= expected, table
        assert set(by_table[table].values()) == {"A"}, (table, by_table[table])  # A = ENABLE ALWAYS
