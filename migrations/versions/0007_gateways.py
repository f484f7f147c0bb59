"""Gateways: gateway API keys, and the calls a decision was made for made searchable.

``api_keys`` gets the role ``gateway``, the apps a gateway key may decide for (``apps``, only
for that role, at least one) and the gateway it is bound to (``gateway``, optional).

``audit_trace_keys(body)`` derives, from an entry's signed bytes, the keys that tie it to the
call it was made for: the request's ``context`` (``request_id:``, ``trace_id:``, ``gateway:``,
``requested_model:``, ``key_alias:``, ``team:``, ``call_id:``) and, for a served-route report
(kind ``served``), ``served_for:<decision id>`` and ``served:cleared|uncleared``. A GIN index on
it answers the audit queries' context filters (``audit/filters.py``). It is an index over the
signed bytes, not a stored column: nothing can disagree with the body, so verification has
nothing more to compare. ``json`` (not ``jsonb``): it only lexes the body, the cheaper of the two
for reading one member.

Revision ID: 0007_gateways
Revises: 0006_sector_facets
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_gateways"
down_revision: str | None = "0006_sector_facets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Keep the keys in sync with audit/filters.py (TRACE_KEYS_SQL, EntryFilter.trace_keys).
TRACE_KEYS_FUNCTION = """
CREATE FUNCTION audit_trace_keys(body bytea)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    doc json;
    ctx json;
    gw json;
    served json;
BEGIN
    BEGIN
        doc := convert_from(body, 'UTF8')::json;
    EXCEPTION WHEN others THEN
        RETURN '{}';  -- bytes that are not JSON (tampering): no keys; verification names the entry
    END;
    ctx := doc -> 'context';
    gw := ctx -> 'gateway';
    served := doc -> 'served';
    RETURN array_remove(ARRAY[
        'request_id:' || (ctx ->> 'request_id'),
        'trace_id:' || (ctx ->> 'trace_id'),
        'gateway:' || (gw ->> 'name'),
        'requested_model:' || (gw ->> 'requested_model'),
        'key_alias:' || (gw ->> 'key_alias'),
        'team:' || (gw ->> 'team'),
        'call_id:' || (gw ->> 'call_id'),
        'served_for:' || (served ->> 'decision_id'),
        'served:' || CASE served ->> 'cleared' WHEN 'true' THEN 'cleared' WHEN 'false' THEN 'uncleared' END
    ], NULL);
END
$$
"""
TRACE_KEYS_INDEX = "CREATE INDEX ix_audit_entries_trace_keys ON audit_entries USING gin (audit_trace_keys(body))"


def upgrade() -> None:
    op.execute("ALTER TABLE api_keys ADD COLUMN apps text[], ADD COLUMN gateway varchar(64)")
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_role")
    op.execute("ALTER TABLE api_keys ADD CONSTRAINT api_keys_role "
               "CHECK (role IN ('app', 'auditor', 'admin', 'gateway'))")
    op.execute("ALTER TABLE api_keys ADD CONSTRAINT api_keys_apps_only_for_gateway_role "
               "CHECK ((role = 'gateway') = (apps IS NOT NULL AND cardinality(apps) > 0) "
               "AND (gateway IS NULL OR role = 'gateway'))")
    op.execute(TRACE_KEYS_FUNCTION)
    op.execute(TRACE_KEYS_INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_audit_entries_trace_keys")
    op.execute("DROP FUNCTION IF EXISTS audit_trace_keys(bytea)")
    op.execute("DELETE FROM api_keys WHERE role = 'gateway'")
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_apps_only_for_gateway_role")
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_role")
    op.execute("ALTER TABLE api_keys ADD CONSTRAINT api_keys_role CHECK (role IN ('app', 'auditor', 'admin'))")
    op.execute("ALTER TABLE api_keys DROP COLUMN apps, DROP COLUMN gateway")
