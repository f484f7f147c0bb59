"""The body's JSONB is derived at query time (view ``audit_entries_json``), no longer stored.

``audit_entries.body_json`` was a second copy of every signed body; it cost ~130 µs of CPU per
appended entry (escaping ~13 KB of text in Python, then JSONB parsing, compression and WAL in
PostgreSQL) and ~160 µs per entry in verification (the body parsed again to compare with it).
The signed bytes (``body``) stay the record; the view ``audit_entries_json`` has every column of
``audit_entries`` plus ``body_json`` computed from ``body`` on every read, so the JSONB cannot
disagree with the signed bytes. SELECT on it goes to ``clearance_auditor`` and
``clearance_app`` where those roles exist (as in 0001).

Downgrade drops the view and adds ``body_json jsonb`` back, **nullable and empty**: the table is
append-only (its triggers refuse UPDATE even to the owner), so the rows written while this
revision was applied keep NULL there. The previous release's verifier then reports the first of
them as a ``column`` failure (``body_json differs from the signed body``) unless a DBA fills
them in, with the append-only triggers switched off:
``UPDATE audit_entries SET body_json = convert_from(body, 'UTF8')::jsonb WHERE body_json IS NULL``.

Revision ID: 0004_body_json_derived
Revises: 0003_audit_facets
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_body_json_derived"
down_revision: str | None = "0003_audit_facets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Listed, not ``*``: a view's columns are fixed when it is created anyway, and the list says
# what a query of the view may rely on.
ENTRY_COLUMNS = (
    "seq", "recorded_at", "kind", "decision_id", "app_id", "caller_key_id", "outcome",
    "policy_revision", "engine", "regulatory_tier", "sector", "models_allowed", "models_denied",
    "reason_codes", "provenances_allowed", "key_id", "prev_hash", "entry_hash", "signature",
    "body",
)
CREATE_VIEW = (
    f"CREATE VIEW audit_entries_json AS SELECT {', '.join(ENTRY_COLUMNS)}, "
    "convert_from(body, 'UTF8')::jsonb AS body_json FROM audit_entries"
)
GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_app') THEN
        GRANT SELECT ON audit_entries_json TO clearance_app;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_auditor') THEN
        GRANT SELECT ON audit_entries_json TO clearance_auditor;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'clearance audit: grants on audit_entries_json failed: %', SQLERRM;
END
$$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE audit_entries DROP COLUMN body_json")
    op.execute(CREATE_VIEW)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute("DROP VIEW audit_entries_json")
    op.execute("ALTER TABLE audit_entries ADD COLUMN body_json jsonb")
