"""``audit_trace_keys`` marked PARALLEL UNSAFE, as PostgreSQL requires of its EXCEPTION block.

The function (0007) catches a body that is not JSON in an EXCEPTION block, which starts a
subtransaction each call, and PostgreSQL refuses subtransactions while a query runs in parallel
("cannot start subtransactions during a parallel operation"); its documentation asks for
PARALLEL UNSAFE for any function that changes the transaction state even temporarily. Declared
PARALLEL SAFE, it let the planner choose a parallel plan for a trace filter over a large log,
and the query failed: counting one gateway's entries (``GET /v1/audit/stats?gateway=…``)
on a log of 60,000 leaves, with PostgreSQL's default settings, answered 503. Marked UNSAFE,
queries calling it are planned without parallel workers. Metadata only: the function's body,
and so its index, stay as they are.

Revision ID: 0012_trace_keys_parallel_unsafe
Revises: 0011_dangerous_capability_facet
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_trace_keys_parallel_unsafe"
down_revision: str | None = "0011_dangerous_capability_facet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER FUNCTION audit_trace_keys(bytea) PARALLEL UNSAFE")


def downgrade() -> None:
    op.execute("ALTER FUNCTION audit_trace_keys(bytea) PARALLEL SAFE")
