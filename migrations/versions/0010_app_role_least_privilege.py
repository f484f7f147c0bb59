"""``clearance_app`` gets exactly the service's grants: no key or v1-chain writes.

Migrations 0001 and 0002 gave the application role ``INSERT`` on ``audit_signing_keys``,
``INSERT, UPDATE (revoked_at)`` on ``api_keys`` and the v1 chain's write grants. Since the v2 log
(0008) the service writes neither, and signing keys and API keys change only through the admin
CLI run as the owner (each change a ``kind: key`` leaf). Those grants were what let an insider
holding the service's role register a forged key or un-revoke an API key; this revokes them, so
``clearance_app`` holds what ``audit/roles.py``'s ``SERVICE_GRANTS`` lists (``clearance db grant``
still exists for a service role of one's own). The v1 head's ``UPDATE`` goes too: the v1 chain is
read-only.

Revision ID: 0010_app_role_least_privilege
Revises: 0009_witness_cosignatures
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_app_role_least_privilege"
down_revision: str | None = "0009_witness_cosignatures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Column-level grants (UPDATE (revoked_at), UPDATE (seq, …)) are revoked by a table-level REVOKE
# of the same privilege too (PostgreSQL: "REVOKE … ON table" also revokes the column grants).
REVOKE = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_app') THEN
        REVOKE INSERT, UPDATE, DELETE ON audit_signing_keys, api_keys FROM clearance_app;
        REVOKE INSERT, UPDATE, DELETE ON audit_entries, audit_checkpoints, audit_chain_head FROM clearance_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'clearance audit: revoking the application role''s key grants failed: %', SQLERRM;
END
$$
"""

# What 0001/0002 granted, for a downgrade to a release that expects them.
REGRANT = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_app') THEN
        GRANT INSERT ON audit_entries, audit_checkpoints, audit_signing_keys TO clearance_app;
        GRANT UPDATE (seq, head_hash, recorded_at) ON audit_chain_head TO clearance_app;
        GRANT INSERT, UPDATE (revoked_at) ON api_keys TO clearance_app;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'clearance audit: re-granting the application role''s key grants failed: %', SQLERRM;
END
$$
"""


def upgrade() -> None:
    op.execute(REVOKE)


def downgrade() -> None:
    op.execute(REGRANT)
