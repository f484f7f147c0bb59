"""Schema by migration: partitions, indexes, append-only triggers, roles and grants."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from audit import AuditStore, AuditWriter, SchemaMismatch, SigningKey, upgrade
from audit.migrate import current_revision, downgrade, head_revision

from tests.conftest import create_database, drop_database

from .helpers import superuser

APP_ROLE = "clearance_app"
AUDITOR_ROLE = "clearance_auditor"


def _months_from_now(offset: int) -> str:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 + offset
    return f"audit_entries_y{index // 12:04d}m{index % 12 + 1:02d}"


def test_upgrade_is_idempotent_and_reaches_head(migrated_database: str) -> None:
    upgrade(migrated_database)
    assert current_revision(migrated_database) == head_revision()


def test_entries_are_partitioned_by_month_with_a_default(migrated_database: str) -> None:
    with superuser(migrated_database) as conn:
        parts = {
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'audit_entries'::regclass"
            )
        }
        strategy = conn.execute(
            "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'audit_entries'::regclass"
        ).fetchone()
    assert strategy == ("r",)
    assert {"audit_entries_default", *(_months_from_now(i) for i in range(-1, 4))} <= parts


def test_compliance_indexes_exist(migrated_database: str) -> None:
    with superuser(migrated_database) as conn:
        indexes = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_entries'"
            ).fetchall()
        )
    assert "USING gin" in indexes["ix_audit_entries_facets"]
    for name in ("recorded_at", "app_recorded_at", "outcome_recorded_at", "policy_revision",
                 "decision_id"):
        assert f"ix_audit_entries_{name}" in indexes
    assert "(seq, recorded_at)" in indexes["pk_audit_entries"]
    # Migration 0005: the facets index answers the array filters; their own GIN indexes are gone.
    for column in ("models_allowed", "models_denied", "reason_codes", "provenances_allowed"):
        assert f"ix_audit_entries_{column}" not in indexes


def test_downgrading_0005_builds_the_array_indexes_again(recorded: str) -> None:
    downgrade(recorded, "0004_body_json_derived")
    with superuser(recorded) as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_entries'")}
    assert {f"ix_audit_entries_{c}" for c in ("models_allowed", "models_denied", "reason_codes",
                                               "provenances_allowed")} <= names
    upgrade(recorded)
    assert current_revision(recorded) == head_revision()


def test_ensure_partitions_adds_guarded_future_months(store: AuditStore) -> None:
    with superuser(store.engine.url.render_as_string(hide_password=False)) as conn:  # the owner's now (0013)
        assert conn.execute("SELECT audit_ensure_partitions(0, 8)").fetchone() == (5,)
        assert conn.execute("SELECT audit_ensure_partitions(0, 8)").fetchone() == (0,)
        triggers = conn.execute(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass "
            "AND NOT tgisinternal ORDER BY tgname",
            (_months_from_now(8),),
        ).fetchall()
    assert triggers == [("audit_append_only", "A"), ("audit_no_truncate", "A")]


def test_every_guard_trigger_fires_always(migrated_database: str) -> None:
    with superuser(migrated_database) as conn:
        rows = conn.execute(
            "SELECT tgrelid::regclass::text, tgname, tgenabled FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgname LIKE 'audit%'"
        ).fetchall()
    assert rows and all(enabled == "A" for _, _, enabled in rows)
    guarded = {table for table, _, _ in rows}
    assert {"audit_entries", "audit_checkpoints", "audit_signing_keys", "audit_chain_head",
            "audit_entries_default"} <= guarded


def _record(url: str, *, v2: bool = False) -> None:
    """Append a few entries and checkpoints to the v1 chain of the database at ``url`` (and,
    with ``v2``, two decisions to the v2 log after it)."""
    from audit.chain import encode_members
    from audit.checkpoints import CheckpointPolicy
    from audit.entry import prepare_fields

    store = AuditStore.from_url(url)
    key = SigningKey.generate()
    try:
        store.register_key(key.public)
        for i in range(3):
            store.append_v1_batch([encode_members(prepare_fields({"kind": "decision", **_fields(i)}))], key=key,
                                  checkpoints=CheckpointPolicy(every_entries=2))
        if v2:
            with AuditWriter(store, key=key) as writer:
                for i in range(2):
                    writer.append({"kind": "decision", **_fields(i + 3)})
    finally:
        store.dispose()


@pytest.fixture
def recorded(migrated_database: str) -> str:
    """A database of its own with a few entries and a checkpoint."""
    _record(migrated_database)
    return migrated_database


@pytest.fixture(scope="module")
def recorded_shared(pg_server_url: str) -> Iterator[str]:
    """Like ``recorded``, shared by the tests that only try (and fail) to change it."""
    name = f"clearance_t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    try:
        upgrade(url)
        _record(url, v2=True)
        yield url
    finally:
        drop_database(pg_server_url, name)


def _fields(i: int) -> dict:
    from .helpers import decision_fields

    fields = decision_fields(i)
    fields.pop("kind")
    return fields


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET outcome = 'allow'",
        "DELETE FROM audit_entries WHERE seq = 2",
        "TRUNCATE audit_entries",
        "UPDATE audit_checkpoints SET key_id = 'x'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
        "UPDATE audit_signing_keys SET created_at = now()",
        "DELETE FROM audit_signing_keys",
        "TRUNCATE audit_signing_keys",
        "DELETE FROM audit_chain_head",
        "TRUNCATE audit_chain_head",
        "UPDATE audit_leaves SET outcome = 'allow'",
        "DELETE FROM audit_leaves WHERE seq = 2",
        "TRUNCATE audit_leaves",
        "UPDATE audit_blobs SET sector = 'x'",
        "DELETE FROM audit_blobs",
        "UPDATE audit_tlog_checkpoints SET note = 'x'",
        "DELETE FROM audit_tlog_checkpoints",
        "DELETE FROM audit_tlog_nodes",
        "DELETE FROM audit_tlog_head",
        "UPDATE audit_tlog_head SET origin = 'x'",
    ],
)
def test_the_application_role_cannot_change_history(recorded_shared: str, statement: str) -> None:
    with superuser(recorded_shared) as conn:
        conn.execute(f"SET ROLE {APP_ROLE}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET outcome = 'allow'",
        "DELETE FROM audit_entries WHERE seq = 2",
        "TRUNCATE audit_entries",
        "UPDATE {partition} SET outcome = 'allow'",
        "DELETE FROM {partition}",
        "TRUNCATE {partition}",
        "UPDATE audit_checkpoints SET key_id = 'x'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
        "UPDATE audit_signing_keys SET created_at = now()",
        "DELETE FROM audit_signing_keys",
        "TRUNCATE audit_signing_keys",
        "UPDATE audit_chain_head SET seq = 0",
        "DELETE FROM audit_chain_head",
        "TRUNCATE audit_chain_head",
        "UPDATE audit_leaves SET outcome = 'allow'",
        "DELETE FROM audit_leaves WHERE seq = 2",
        "TRUNCATE audit_leaves",
        "UPDATE audit_blobs SET sector = 'x'",
        "DELETE FROM audit_blobs",
        "UPDATE audit_tlog_checkpoints SET note = 'x'",
        "TRUNCATE audit_tlog_nodes",
        "UPDATE audit_tlog_head SET size = 0",
        "DELETE FROM audit_tlog_head",
        "TRUNCATE audit_tlog_head",
    ],
)
def test_triggers_refuse_changes_even_to_the_owner_and_in_replica_mode(
    recorded_shared: str, statement: str
) -> None:
    with superuser(recorded_shared) as conn:
        conn.execute("SET session_replication_role = replica")
        with pytest.raises(psycopg.errors.RaiseException, match="clearance audit"):
            conn.execute(statement.format(partition=_months_from_now(0)))


def test_the_application_role_can_append_and_verify(recorded: str) -> None:
    """The whole writer path works with nothing but the application role's grants, once the
    owner has registered the signing key (the role may not: migration 0010)."""
    from sqlalchemy import create_engine

    from audit._db import sqlalchemy_url
    from audit.logverify import verify_trail
    from audit.roles import LeastPrivilegeStore
    from audit.trust import trusted_verifiers

    key = SigningKey.generate()
    owner = AuditStore.from_url(recorded)
    try:
        owner.register_key(key.public)
    finally:
        owner.dispose()
    engine = create_engine(
        sqlalchemy_url(recorded), connect_args={"options": f"-c role={APP_ROLE}"}
    )
    store = LeastPrivilegeStore(engine)
    try:
        with AuditWriter(store, key=key) as writer:
            receipt = writer.append({"kind": "decision", **_fields(9)})
        assert receipt.seq == 2  # after the leaf recording the v1 head (seq 3)
        result = verify_trail(store, trusted=trusted_verifiers(store.list_keys(), store.log_origin()))
        assert result.valid and result.checked == 2, result.reason
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == APP_ROLE
    finally:
        store.dispose()


def test_the_application_role_holds_exactly_the_service_grants(migrated_database: str) -> None:
    """Migration 0010: the role the migrations create can neither register a signing key nor
    create or un-revoke an API key, nor write the v1 chain (issue 15's insider)."""
    from audit.roles import excess_privileges

    with superuser(migrated_database) as conn:
        assert excess_privileges(conn, APP_ROLE) == []
        assert excess_privileges(conn, AUDITOR_ROLE) == []
        conn.execute(f"SET ROLE {APP_ROLE}")
        for statement in (
            "INSERT INTO audit_signing_keys (key_id, public_key) VALUES ('x', decode(repeat('00', 32), 'hex'))",
            "UPDATE api_keys SET revoked_at = NULL",
            "INSERT INTO api_keys (key_id, secret_sha256, role, created_at) "
            "VALUES ('0123456789abcdef', decode(repeat('00', 32), 'hex'), 'admin', now())",
            "UPDATE audit_chain_head SET seq = seq + 1",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_downgrading_0010_gives_the_old_grants_back(migrated_database: str) -> None:
    from audit.roles import excess_privileges

    downgrade(migrated_database, "0009_witness_cosignatures")
    with superuser(migrated_database) as conn:
        assert "INSERT on audit_signing_keys" in excess_privileges(conn, APP_ROLE)
    upgrade(migrated_database)
    with superuser(migrated_database) as conn:
        assert excess_privileges(conn, APP_ROLE) == []


def _columns(conn: psycopg.Connection[Any], relation: str) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum", (relation,))]


@pytest.mark.parametrize("role", [AUDITOR_ROLE, APP_ROLE])
def test_the_roles_read_the_body_as_jsonb_through_the_view(recorded_shared: str, role: str) -> None:
    """Migration 0004: body_json is no longer stored; the view adds it to every column."""
    with superuser(recorded_shared) as conn:
        table, view = _columns(conn, "audit_entries"), _columns(conn, "audit_entries_json")
        conn.execute(f"SET ROLE {role}")
        rows = conn.execute("SELECT seq, body, body_json FROM audit_entries_json ORDER BY seq").fetchall()
    assert "body_json" not in table and view == [*table, "body_json"]
    assert [seq for seq, _, _ in rows] == [1, 2, 3]
    assert all(derived == json.loads(body) for _, body, derived in rows)


def test_downgrading_0004_adds_body_json_back_empty(recorded: str) -> None:
    """Append-only: the rows written meanwhile keep NULL (the migration's docstring says so)."""
    downgrade(recorded, "0003_audit_facets")
    with superuser(recorded) as conn:
        assert conn.execute("SELECT to_regclass('audit_entries_json')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM audit_entries WHERE body_json IS NULL").fetchone() == (3,)
    upgrade(recorded)
    assert current_revision(recorded) == head_revision()


def test_the_chain_head_cannot_move_back_even_for_the_owner(recorded_shared: str) -> None:
    with superuser(recorded_shared) as conn:  # the application role may not update it at all (0010)
        with pytest.raises(psycopg.errors.RaiseException, match="cannot move back"):
            conn.execute("UPDATE audit_chain_head SET seq = 1")


def test_an_unmigrated_database_is_refused(fresh_database: str) -> None:
    store = AuditStore.from_url(fresh_database)
    try:
        with pytest.raises(SchemaMismatch, match="db upgrade"):
            store.check_schema()
        with pytest.raises(SchemaMismatch):
            AuditWriter(store, key=SigningKey.generate()).start()
    finally:
        store.dispose()


def test_downgrade_refuses_to_drop_recorded_history(recorded: str) -> None:
    with pytest.raises(RuntimeError, match="refusing to downgrade"):
        downgrade(recorded, "base")
    assert current_revision(recorded) == head_revision()


def test_0011_fills_the_dangerous_capability_facet_of_the_inputs_already_stored(migrated_database: str) -> None:
    """Inputs stored before 0011 get the facet their bytes give (what verification compares);
    results keep none."""
    from audit.entry import blob_facets

    _record(migrated_database, v2=True)
    downgrade(migrated_database, "0010_app_role_least_privilege")
    upgrade(migrated_database)
    with superuser(migrated_database) as conn:
        rows = conn.execute(
            "SELECT b.data, b.dangerous_capability, EXISTS (SELECT 1 FROM audit_leaves l WHERE l.input_sha256 = b.sha256) "
            "FROM audit_blobs b").fetchall()
        viewed = conn.execute("SELECT DISTINCT dangerous_capability FROM audit_log WHERE kind = 'decision'").fetchall()
    inputs = [(json.loads(bytes(data)), stored) for data, stored, is_input in rows if is_input]
    assert inputs and all(stored == blob_facets(input_=value)["dangerous_capability"] == "none"
                          for value, stored in inputs)
    assert all(stored is None for _, stored, is_input in rows if not is_input)
    assert viewed == [("none",)]
