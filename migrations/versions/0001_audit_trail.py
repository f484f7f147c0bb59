"""Signed audit trail: entries (partitioned by month), chain head, checkpoints, signing keys.

Also: append-only triggers (``ENABLE ALWAYS``), the ``clearance_app`` and ``clearance_auditor``
roles with their grants (when the migrating role may create roles), and
``audit_ensure_partitions()`` which creates monthly partitions ahead of time.

Revision ID: 0001_audit_trail
Revises:
Create Date: 2025-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_audit_trail"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "clearance_app"
AUDITOR_ROLE = "clearance_auditor"
APPEND_ONLY_TABLES = ("audit_entries", "audit_checkpoints", "audit_signing_keys")

REFUSE_CHANGE_FUNCTION = """
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'clearance audit: % on % is refused: audit tables are append-only',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'raise_exception',
              HINT = 'Audit entries, checkpoints and signing keys can only be inserted.';
END
$$
"""

GUARD_CHAIN_HEAD_FUNCTION = """
CREATE FUNCTION audit_guard_chain_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'clearance audit: % on audit_chain_head is refused', TG_OP;
    END IF;
    IF NEW.id <> OLD.id OR NEW.log_id <> OLD.log_id THEN
        RAISE EXCEPTION 'clearance audit: the chain head id and log_id never change';
    END IF;
    IF NEW.seq < OLD.seq THEN
        RAISE EXCEPTION 'clearance audit: the chain head cannot move back (% -> %)',
            OLD.seq, NEW.seq;
    END IF;
    RETURN NEW;
END
$$
"""

# Created SECURITY DEFINER so the application role (which may not create tables) can make sure
# next months' partitions exist at start-up. %(schema)s is filled in at migration time.
ENSURE_PARTITIONS_FUNCTION = """
CREATE FUNCTION audit_ensure_partitions(months_back integer DEFAULT 1,
                                        months_ahead integer DEFAULT 3)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = %(schema)s, pg_temp AS $$
DECLARE
    month_start timestamp;
    part text;
    created integer := 0;
BEGIN
    FOR i IN -months_back..months_ahead LOOP
        month_start := date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i);
        part := 'audit_entries_' || to_char(month_start, '"y"YYYY"m"MM');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        BEGIN
            EXECUTE format(
                'CREATE TABLE %%I PARTITION OF audit_entries FOR VALUES FROM (%%L) TO (%%L)',
                part, month_start AT TIME ZONE 'UTC',
                (month_start + interval '1 month') AT TIME ZONE 'UTC');
            PERFORM audit_guard_partition(part);
            created := created + 1;
        EXCEPTION WHEN others THEN
            -- e.g. the DEFAULT partition already holds rows of that month: they stay there.
            RAISE WARNING 'clearance audit: could not create partition %%: %%', part, SQLERRM;
        END;
    END LOOP;
    RETURN created;
END
$$
"""

# Row triggers are cloned onto partitions; statement (TRUNCATE) triggers are not, so every
# partition gets its own. Both are set ENABLE ALWAYS (they then fire even under
# session_replication_role = replica).
GUARD_PARTITION_FUNCTION = """
CREATE FUNCTION audit_guard_partition(part text) RETURNS void LANGUAGE plpgsql
SET search_path = %(schema)s, pg_temp AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON %%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()', part);
    EXECUTE format('ALTER TABLE %%I ENABLE ALWAYS TRIGGER audit_no_truncate', part);
    EXECUTE format('ALTER TABLE %%I ENABLE ALWAYS TRIGGER audit_append_only', part);
END
$$
"""

CREATE_ROLES = """
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['%(app)s', '%(auditor)s'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %%I NOLOGIN', r);
            EXCEPTION
                WHEN insufficient_privilege THEN
                    RAISE WARNING 'clearance audit: cannot create role %% (%%); '
                                  'ask a DBA to create it and re-run the grants', r, SQLERRM;
                WHEN duplicate_object OR unique_violation THEN
                    NULL;  -- created concurrently by another migration
            END;
        END IF;
    END LOOP;
END
$$
"""

GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%(app)s') THEN
        GRANT SELECT, INSERT ON audit_entries, audit_checkpoints, audit_signing_keys TO %(app)s;
        GRANT SELECT, UPDATE (seq, head_hash, recorded_at) ON audit_chain_head TO %(app)s;
        GRANT SELECT ON alembic_version TO %(app)s;
        GRANT EXECUTE ON FUNCTION audit_ensure_partitions(integer, integer) TO %(app)s;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%(auditor)s') THEN
        GRANT SELECT ON audit_entries, audit_checkpoints, audit_signing_keys, audit_chain_head,
                        alembic_version TO %(auditor)s;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'clearance audit: grants to the audit roles failed: %%', SQLERRM;
END
$$
"""


def upgrade() -> None:
    bind = op.get_bind()
    schema = bind.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()

    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("decision_id", postgresql.UUID(as_uuid=True)),
        sa.Column("app_id", sa.Text),
        sa.Column("caller_key_id", sa.Text),
        sa.Column("outcome", sa.Text),
        sa.Column("policy_revision", sa.Text),
        sa.Column("engine", sa.Text),
        sa.Column("regulatory_tier", sa.Text),
        sa.Column("sector", sa.Text),
        sa.Column("models_allowed", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("models_denied", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("reason_codes", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("provenances_allowed", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.LargeBinary, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("body_json", postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("seq", "recorded_at", name="pk_audit_entries"),
        sa.CheckConstraint("seq >= 1", name="ck_audit_entries_seq"),
        sa.CheckConstraint("octet_length(prev_hash) = 32", name="ck_audit_entries_prev_hash"),
        sa.CheckConstraint("octet_length(entry_hash) = 32", name="ck_audit_entries_entry_hash"),
        sa.CheckConstraint("octet_length(signature) = 64", name="ck_audit_entries_signature"),
        sa.CheckConstraint("outcome IN ('allow', 'deny')", name="ck_audit_entries_outcome"),
        postgresql_partition_by="RANGE (recorded_at)",
    )
    op.create_index("ix_audit_entries_recorded_at", "audit_entries", ["recorded_at"])
    op.create_index("ix_audit_entries_app_recorded_at", "audit_entries", ["app_id", "recorded_at"])
    op.create_index(
        "ix_audit_entries_outcome_recorded_at", "audit_entries", ["outcome", "recorded_at"]
    )
    op.create_index(
        "ix_audit_entries_policy_revision", "audit_entries", ["policy_revision", "recorded_at"]
    )
    op.create_index("ix_audit_entries_decision_id", "audit_entries", ["decision_id"])
    for column in ("models_allowed", "models_denied", "reason_codes", "provenances_allowed"):
        op.create_index(
            f"ix_audit_entries_{column}", "audit_entries", [column], postgresql_using="gin"
        )

    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("log_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("head_hash", sa.LargeBinary, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_head_single_row"),
        sa.CheckConstraint("seq >= 0", name="ck_audit_chain_head_seq"),
        sa.CheckConstraint("octet_length(head_hash) = 32", name="ck_audit_chain_head_hash"),
    )
    op.execute(
        "INSERT INTO audit_chain_head (id, log_id, seq, head_hash, recorded_at) "
        "VALUES (1, gen_random_uuid(), 0, decode(repeat('00', 32), 'hex'), NULL)"
    )

    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("head_hash", sa.LargeBinary, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("seq >= 1", name="ck_audit_checkpoints_seq"),
        sa.CheckConstraint("octet_length(head_hash) = 32", name="ck_audit_checkpoints_hash"),
        sa.CheckConstraint("octet_length(signature) = 64", name="ck_audit_checkpoints_signature"),
    )

    op.create_table(
        "audit_signing_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("algorithm", sa.Text, nullable=False, server_default="Ed25519"),
        sa.Column("public_key", sa.LargeBinary, nullable=False, unique=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("algorithm = 'Ed25519'", name="ck_audit_signing_keys_algorithm"),
        sa.CheckConstraint("octet_length(public_key) = 32", name="ck_audit_signing_keys_length"),
    )

    # Append-only, enforced by PostgreSQL itself.
    op.execute(REFUSE_CHANGE_FUNCTION)
    op.execute(GUARD_CHAIN_HEAD_FUNCTION)
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER audit_append_only")
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER audit_no_truncate")
    op.execute(
        "CREATE TRIGGER audit_chain_head_guard BEFORE UPDATE OR DELETE ON audit_chain_head "
        "FOR EACH ROW EXECUTE FUNCTION audit_guard_chain_head()"
    )
    op.execute(
        "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_chain_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
    )
    op.execute("ALTER TABLE audit_chain_head ENABLE ALWAYS TRIGGER audit_chain_head_guard")
    op.execute("ALTER TABLE audit_chain_head ENABLE ALWAYS TRIGGER audit_no_truncate")

    # Monthly partitions: a DEFAULT one (nothing is ever refused for want of a partition) and
    # the months around now; audit_ensure_partitions() is called again at every start-up.
    op.execute(GUARD_PARTITION_FUNCTION % {"schema": schema})
    op.execute(ENSURE_PARTITIONS_FUNCTION % {"schema": schema})
    op.execute("REVOKE ALL ON FUNCTION audit_ensure_partitions(integer, integer) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION audit_guard_partition(text) FROM PUBLIC")
    op.execute("CREATE TABLE audit_entries_default PARTITION OF audit_entries DEFAULT")
    op.execute("SELECT audit_guard_partition('audit_entries_default')")
    op.execute("SELECT audit_ensure_partitions(1, 3)")

    # Roles: only what this migration is allowed to create (see docs/audit.md, "Roles").
    names = {"app": APP_ROLE, "auditor": AUDITOR_ROLE}
    op.execute(CREATE_ROLES % names)
    op.execute(GRANTS % names)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT EXISTS (SELECT 1 FROM audit_entries)")).scalar_one():
        raise RuntimeError(
            "refusing to downgrade: audit_entries holds entries; "
            "export and archive the trail, then drop the tables by hand if you really mean it"
        )
    op.execute("DROP TABLE audit_entries CASCADE")
    op.execute("DROP TABLE audit_checkpoints, audit_signing_keys, audit_chain_head")
    op.execute("DROP FUNCTION audit_ensure_partitions(integer, integer)")
    op.execute("DROP FUNCTION audit_guard_partition(text)")
    op.execute("DROP FUNCTION audit_guard_chain_head()")
    op.execute("DROP FUNCTION audit_refuse_change()")
