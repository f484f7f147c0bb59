"""Audit log v2: the decision trail as an RFC 6962 Merkle-tree transparency log.

Tables (all append-only; the head moves forward only):

``audit_blobs``
    Each distinct input and result, stored once under the SHA-256 of its RFC 8785 bytes, with
    the query facets derived from it (``regulatory_tier``, ``sector`` from an input;
    ``models_allowed``/``models_denied``/``reason_codes``/``provenances_allowed`` and
    ``policy_revision`` from a result).
    100,000 decisions over 50 workloads store 50 inputs, not 100,000.
``audit_leaves``
    One row per leaf: ``seq`` (leaf index + 1), the exact leaf bytes (``body``, compressed in the
    row), ``leaf_hash`` = SHA-256(0x00 ‖ body), the blob digests, and the few columns queries
    filter on (time, kind, decision id, app, outcome), all derived from the body (verification
    compares them). Indexes: the primary key, time, decision id, trace keys.
``audit_tlog_nodes``
    Complete subtrees at levels 8, 16, 24 …: the hashes of tlog-tiles tiles above level 0 (level-0
    tiles are the leaves' ``leaf_hash``). About 32/255 bytes of hash per leaf.
``audit_tlog_checkpoints``
    One C2SP signed checkpoint note per appended batch, committed with its leaves.
``audit_tlog_head``
    One row: the log's origin, size, root and frontier (the right edge of the tree).

The view ``audit_log`` joins a leaf to its blobs' facets: what ``audit/queries.py`` reads. The
gateway filters' index on ``audit_trace_keys(body)`` (0007) is built on the leaves too: the
``context`` and ``served`` members stay in the leaf body.

v1 tables stay as they are (read-only for the service from now on); the first v2 leaf, written
by the writer, records the v1 head (``kind`` ``v1_head``).

Revision ID: 0008_transparency_log
Revises: 0007_gateways
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from alembic import op

revision: str = "0008_transparency_log"
down_revision: str | None = "0007_gateways"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ORIGIN = "clearance/audit"  # api.settings.Settings.log_origin's default
APPEND_ONLY = ("audit_blobs", "audit_leaves", "audit_tlog_nodes", "audit_tlog_checkpoints")

TABLES = """
CREATE TABLE audit_blobs (
    sha256 bytea PRIMARY KEY CHECK (length(sha256) = 32),
    data bytea NOT NULL,
    regulatory_tier text,
    sector text,
    models_allowed text[] NOT NULL DEFAULT '{}',
    models_denied text[] NOT NULL DEFAULT '{}',
    reason_codes text[] NOT NULL DEFAULT '{}',
    provenances_allowed text[] NOT NULL DEFAULT '{}',
    policy_revision text
);
CREATE TABLE audit_leaves (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    recorded_at timestamptz NOT NULL,
    kind text NOT NULL,
    decision_id uuid,
    app_id text,
    outcome text,
    input_sha256 bytea REFERENCES audit_blobs (sha256),
    result_sha256 bytea REFERENCES audit_blobs (sha256),
    leaf_hash bytea NOT NULL,
    body bytea NOT NULL
);
-- Compress the body in the row (lz4 where the server has it) once a row passes 128 bytes,
-- instead of PostgreSQL's ~2 kB default: most of a leaf is its body.
ALTER TABLE audit_leaves ALTER COLUMN body SET STORAGE MAIN;
ALTER TABLE audit_leaves SET (toast_tuple_target = 128);
CREATE INDEX ix_audit_leaves_time ON audit_leaves (recorded_at);
CREATE INDEX ix_audit_leaves_decision ON audit_leaves (decision_id) WHERE decision_id IS NOT NULL;
CREATE INDEX ix_audit_leaves_trace_keys ON audit_leaves USING gin (audit_trace_keys(body));
CREATE TABLE audit_tlog_nodes (
    level smallint NOT NULL CHECK (level > 0 AND level % 8 = 0),
    idx bigint NOT NULL CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
CREATE TABLE audit_tlog_checkpoints (
    size bigint PRIMARY KEY CHECK (size >= 0),
    root bytea NOT NULL CHECK (length(root) = 32),
    note text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE audit_tlog_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    origin text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    root bytea NOT NULL,
    frontier bytea NOT NULL,
    recorded_at timestamptz
);
INSERT INTO audit_tlog_head (id, origin, size, root, frontier)
SELECT 1, {origin}, 0, sha256(''::bytea), '\\x0000000000000000'::bytea
FROM audit_chain_head WHERE id = 1;
CREATE VIEW audit_log AS
SELECT l.seq, l.recorded_at, l.kind, l.decision_id, l.app_id,
       convert_from(l.body, 'UTF8')::json ->> 'caller_key_id' AS caller_key_id, l.outcome,
       coalesce(r.policy_revision, convert_from(l.body, 'UTF8')::json ->> 'policy_revision') AS policy_revision,
       convert_from(l.body, 'UTF8')::json ->> 'engine' AS engine,
       convert_from(l.body, 'UTF8')::json ->> 'key_id' AS key_id,
       l.leaf_hash, l.input_sha256, l.result_sha256, l.body,
       i.regulatory_tier, i.sector,
       coalesce(r.models_allowed, '{}') AS models_allowed,
       coalesce(r.models_denied, '{}') AS models_denied,
       coalesce(r.reason_codes, '{}') AS reason_codes,
       coalesce(r.provenances_allowed, '{}') AS provenances_allowed,
       i.data AS input_data, r.data AS result_data,
       convert_from(l.body, 'UTF8')::jsonb AS body_json
FROM audit_leaves l
LEFT JOIN audit_blobs i ON i.sha256 = l.input_sha256
LEFT JOIN audit_blobs r ON r.sha256 = l.result_sha256;
"""

GUARD_HEAD_FUNCTION = """
CREATE FUNCTION audit_guard_tlog_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'clearance audit: % on audit_tlog_head is refused', TG_OP;
    END IF;
    IF NEW.id <> OLD.id OR NEW.origin <> OLD.origin THEN
        RAISE EXCEPTION 'clearance audit: the log head id and origin never change';
    END IF;
    IF NEW.size < OLD.size THEN
        RAISE EXCEPTION 'clearance audit: the log head cannot move back (% -> %)', OLD.size, NEW.size;
    END IF;
    RETURN NEW;
END
$$
"""

GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_app') THEN
        GRANT SELECT, INSERT ON audit_blobs, audit_leaves, audit_tlog_nodes, audit_tlog_checkpoints
            TO clearance_app;
        GRANT SELECT, UPDATE (size, root, frontier, recorded_at) ON audit_tlog_head TO clearance_app;
        GRANT SELECT ON audit_log TO clearance_app;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_auditor') THEN
        GRANT SELECT ON audit_blobs, audit_leaves, audit_tlog_nodes, audit_tlog_checkpoints,
                        audit_tlog_head, audit_log TO clearance_auditor;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'clearance audit: grants on the v2 log tables failed: %', SQLERRM;
END
$$
"""


def log_origin() -> str:
    """The origin the log is created with: ``CLEARANCE_LOG_ORIGIN`` (the service's one origin
    setting, ``api/settings.py``), as an SQL literal. The writer refuses to append under any
    other, and the head's origin never changes once set."""
    origin = os.environ.get("CLEARANCE_LOG_ORIGIN", DEFAULT_ORIGIN)
    if not origin or "\n" in origin or origin != origin.strip():
        raise RuntimeError(f"CLEARANCE_LOG_ORIGIN {origin!r} is not a checkpoint origin (one non-empty line)")
    return "'" + origin.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute(TABLES.replace("{origin}", log_origin()))
    op.execute(GUARD_HEAD_FUNCTION)
    for table in APPEND_ONLY:
        op.execute(f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")
        op.execute(f"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER audit_append_only")
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER audit_no_truncate")
    op.execute("CREATE TRIGGER audit_tlog_head_guard BEFORE UPDATE OR DELETE ON audit_tlog_head "
               "FOR EACH ROW EXECUTE FUNCTION audit_guard_tlog_head()")
    op.execute("CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_tlog_head "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")
    op.execute("ALTER TABLE audit_tlog_head ENABLE ALWAYS TRIGGER audit_tlog_head_guard")
    op.execute("ALTER TABLE audit_tlog_head ENABLE ALWAYS TRIGGER audit_no_truncate")
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute("SELECT 1 FROM audit_leaves LIMIT 0")
    has_rows = op.get_bind().exec_driver_sql("SELECT EXISTS (SELECT 1 FROM audit_leaves)").scalar()
    if has_rows:
        raise RuntimeError("refusing to downgrade: audit_leaves holds entries of the v2 log")
    op.execute("DROP VIEW audit_log")
    for table in ("audit_tlog_head", "audit_tlog_checkpoints", "audit_tlog_nodes", "audit_leaves", "audit_blobs"):
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP FUNCTION audit_guard_tlog_head()")
