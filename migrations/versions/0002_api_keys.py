"""API keys of the service (hashed secrets, roles, revocation).

Unlike audit tables, keys are revoked by an UPDATE of ``revoked_at``; the application role may
insert and revoke but never delete a key, so the key id recorded in old entries stays resolvable.

Revision ID: 0002_api_keys
Revises: 0001_audit_trail
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_api_keys"
down_revision: str | None = "0001_audit_trail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("app_id", sa.String(64), nullable=True),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('app', 'auditor', 'admin')", name="api_keys_role"),
        sa.CheckConstraint("(role = 'app') = (app_id IS NOT NULL)", name="api_keys_app_only_for_app_role"),
    )
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'clearance_app') THEN
                GRANT SELECT, INSERT, UPDATE (revoked_at) ON api_keys TO clearance_app;
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.drop_table("api_keys")
