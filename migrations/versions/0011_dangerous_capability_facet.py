"""The input blob's ``dangerous_capability`` as a facet: counting it reads no body.

``audit_blobs`` gets ``dangerous_capability`` (``input.workload.dangerous_capability`` of an
input blob, a string or null; ``audit/entry.py`` ``blob_facets``), filled by the writer with the
other facets and checked by verification like them (``audit/logverify.py`` step 5). The view
``audit_log`` shows it. ``GET /v1/audit/stats?group_by=dangerous_capability`` (and the period
report's count) then groups a column: before, PostgreSQL parsed the input blob of every entry
counted (19 s for a million entries on the 2-core machine, 1.5 s now: docs/performance.md).

Upgrade fills the facet of the input blobs already stored (one per distinct input, not per
entry), with the append-only trigger of ``audit_blobs`` off for that one statement, the same
derivation as the writer's (a JSON string, else null).

Revision ID: 0011_dangerous_capability_facet
Revises: 0010_app_role_least_privilege
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_dangerous_capability_facet"
down_revision: str | None = "0010_app_role_least_privilege"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0008's view, with the new facet as its last column (CREATE OR REPLACE VIEW only appends).
VIEW = """
CREATE OR REPLACE VIEW audit_log AS
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
       convert_from(l.body, 'UTF8')::jsonb AS body_json{extra}
FROM audit_leaves l
LEFT JOIN audit_blobs i ON i.sha256 = l.input_sha256
LEFT JOIN audit_blobs r ON r.sha256 = l.result_sha256
"""
FACET = "convert_from(data, 'UTF8')::jsonb #> '{workload,dangerous_capability}'"
BACKFILL = f"""
UPDATE audit_blobs b SET dangerous_capability = {FACET} #>> '{{}}'
WHERE jsonb_typeof({FACET}) = 'string'
  AND EXISTS (SELECT 1 FROM audit_leaves l WHERE l.input_sha256 = b.sha256)
"""
GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_app') THEN
        GRANT SELECT ON audit_log TO clearance_app;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_auditor') THEN
        GRANT SELECT ON audit_log TO clearance_auditor;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'clearance audit: grants on audit_log failed: %', SQLERRM;
END
$$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE audit_blobs ADD COLUMN dangerous_capability text")
    op.execute("ALTER TABLE audit_blobs DISABLE TRIGGER audit_append_only")
    op.execute(BACKFILL)
    op.execute("ALTER TABLE audit_blobs ENABLE ALWAYS TRIGGER audit_append_only")
    op.execute(VIEW.replace("{extra}", ",\n       i.dangerous_capability"))


def downgrade() -> None:
    op.execute("DROP VIEW audit_log")
    op.execute(VIEW.replace("{extra}", ""))
    op.execute(GRANTS)
    op.execute("ALTER TABLE audit_blobs DROP COLUMN dangerous_capability")
