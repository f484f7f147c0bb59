"""The v1 chain's partitions are the owner's: ``clearance_app`` loses ``EXECUTE audit_ensure_partitions``.

Migration 0001 let the application role call ``audit_ensure_partitions(months_back,
months_ahead)``, a SECURITY DEFINER function, so that the writer could create next months'
partitions of ``audit_entries`` at start-up. Since the v2 log (0008) the service inserts nothing
into that table (0010 revoked its ``INSERT``), yet it kept the right to run DDL as the owner: an
insider with the service's role could create thousands of partitions (each an ACCESS EXCLUSIVE
lock on ``audit_entries``, which every verification reads, and catalog rows every query of the
v1 chain then plans over). The writer no longer calls it; this revokes the grant. Rows of months
without a partition (only an owner's tools still append to v1) go to the DEFAULT partition.

Revision ID: 0013_partitions_owner_only
Revises: 0012_trace_keys_parallel_unsafe
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013_partitions_owner_only"
down_revision: str | None = "0012_trace_keys_parallel_unsafe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANGE = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_app') THEN
        {verb} EXECUTE ON FUNCTION audit_ensure_partitions(integer, integer) {direction} clearance_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'clearance audit: changing the application role''s partition grant failed: %', SQLERRM;
END
$$
"""


def upgrade() -> None:
    op.execute(_CHANGE.format(verb="REVOKE", direction="FROM"))


def downgrade() -> None:  # what 0001 granted, for a release whose writer still calls it
    op.execute(_CHANGE.format(verb="GRANT", direction="TO"))
