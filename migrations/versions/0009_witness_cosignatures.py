"""Witness cosignatures of the log's checkpoints (C2SP tlog-cosignature), append-only.

``audit_witness_cosignatures``
    One row per (checkpoint size, witness key): the witness's ``cosignature/v1`` signature line
    exactly as received (``— <name> base64(key ID ‖ timestamp ‖ signature)``), its parts for
    queries, and when the service received it. The service stores a line only after it verified
    with the witness's configured verifier key (``audit/witnessing.py``); verification checks it
    again with keys the verifier pins (``clearance audit verify --witness``). No foreign key to
    ``audit_tlog_checkpoints``: it would make a TRUNCATE of that table fail on the key rather
    than on its append-only trigger.

Revision ID: 0009_witness_cosignatures
Revises: 0008_transparency_log
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009_witness_cosignatures"
down_revision: str | None = "0008_transparency_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "audit_witness_cosignatures"

CREATE = f"""
CREATE TABLE {TABLE} (
    size bigint NOT NULL CHECK (size >= 0),
    witness text NOT NULL,
    key_id bytea NOT NULL CHECK (length(key_id) = 4),
    cosigned_at bigint NOT NULL CHECK (cosigned_at > 0),
    line text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (size, witness, key_id)
);
CREATE INDEX ix_audit_witness_cosignatures_witness ON {TABLE} (witness, key_id, size);
"""

GRANTS = f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_app') THEN
        GRANT SELECT, INSERT ON {TABLE} TO clearance_app;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_auditor') THEN
        GRANT SELECT ON {TABLE} TO clearance_auditor;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'clearance audit: grants on {TABLE} failed: %', SQLERRM;
END
$$
"""


def upgrade() -> None:
    op.execute(CREATE)
    op.execute(f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
               "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")
    op.execute(f"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {TABLE} "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER audit_append_only")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ALWAYS TRIGGER audit_no_truncate")
    op.execute(GRANTS)


def downgrade() -> None:
    has_rows = op.get_bind().exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {TABLE})").scalar()
    if has_rows:
        raise RuntimeError(f"refusing to downgrade: {TABLE} holds witness cosignatures")
    op.execute(f"DROP TABLE {TABLE}")
