"""Drop the four per-array GIN indexes of 0001: the facets index (0003) answers their filters.

``models_allowed``, ``models_denied``, ``reason_codes`` and ``provenances_allowed`` each had a
GIN index from before ``audit_facets(...)`` existed. Since 0003 every containment filter of the
compliance queries is answered through the facets index; measured on 300,000 entries
(``bench/volume.py --reuse`` before and after dropping them), the first pages of the 11 filter
sets and the 30-day statistics took the same time with and without them, while every append
paid ~25 µs of PostgreSQL CPU per entry to maintain them (``bench/append_cost.py``), inside the
chain lock. The columns stay (verification checks them; queries filter on them).

Downgrade builds them again (on a large table that takes a while and locks out appends).

Revision ID: 0005_drop_array_gin
Revises: 0004_body_json_derived
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005_drop_array_gin"
down_revision: str | None = "0004_body_json_derived"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ARRAY_COLUMNS = ("models_allowed", "models_denied", "reason_codes", "provenances_allowed")


def upgrade() -> None:
    for column in ARRAY_COLUMNS:
        op.drop_index(f"ix_audit_entries_{column}", table_name="audit_entries")


def downgrade() -> None:
    for column in ARRAY_COLUMNS:
        op.create_index(f"ix_audit_entries_{column}", "audit_entries", [column], postgresql_using="gin")
