"""One facet per sector: a decision judged for several sectors is found by each of them.

Since app profiles, a workload that names no sector is judged for every sector of its app's
profile, and the derived ``sector`` column holds those sectors joined by commas
(``audit/entry.py``). ``audit_facets(...)`` now splits it: ``s:<sector>`` and the
``sp:<sector>:<provenance>`` pairs once per sector, so ``sector=insurance`` finds a decision
judged for ``financial_services,insurance`` through the facets index as well as by the direct
filter (``audit/filters.py``). The function keeps its arguments; the index is built again
because what it derives changed.

Revision ID: 0006_sector_facets
Revises: 0005_drop_array_gin
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_sector_facets"
down_revision: str | None = "0005_drop_array_gin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Keep the argument list in sync with audit/queries.py (FACETS_SQL).
_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_facets(app_id text, outcome text, regulatory_tier text, sector text,
                                        policy_revision text, models_allowed text[], models_denied text[],
                                        reason_codes text[], provenances_allowed text[])
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN array_remove(ARRAY['a:' || app_id, 'o:' || outcome, 't:' || regulatory_tier,
                              'r:' || policy_revision], NULL)
        || ARRAY(SELECT 's:' || s FROM unnest({sectors}) AS s)
        || ARRAY(SELECT 'mc:' || m FROM unnest(models_allowed) AS m)
        || ARRAY(SELECT 'md:' || m FROM unnest(models_denied) AS m)
        || ARRAY(SELECT 'c:' || c FROM unnest(reason_codes) AS c)
        || ARRAY(SELECT 'p:' || p FROM unnest(provenances_allowed) AS p)
        || ARRAY(SELECT 'tp:' || regulatory_tier || ':' || p FROM unnest(provenances_allowed) AS p
                 WHERE regulatory_tier IS NOT NULL)
        || ARRAY(SELECT 'sp:' || s || ':' || p FROM unnest({sectors}) AS s, unnest(provenances_allowed) AS p)
        || ARRAY(SELECT 'ap:' || app_id || ':' || p FROM unnest(provenances_allowed) AS p
                 WHERE app_id IS NOT NULL);
END
$$
"""
# string_to_array(NULL, ',') is NULL, whose unnest is empty: no sector, no key.
SPLIT = "string_to_array(sector, ',')"
WHOLE = "ARRAY[sector]"  # 0003: the column's value as one key (NULL: the array_remove'd key)
_INDEX = """
CREATE INDEX ix_audit_entries_facets ON audit_entries USING gin (
    audit_facets(app_id, outcome, regulatory_tier, sector, policy_revision, models_allowed,
                 models_denied, reason_codes, provenances_allowed))
"""


def _replace(sectors: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_audit_entries_facets")
    op.execute(_FUNCTION.replace("{sectors}", sectors))
    op.execute(_INDEX)


def upgrade() -> None:
    _replace(SPLIT)


def downgrade() -> None:
    # 0003's keys: one s: key and sp: pairs for the whole column value.
    _replace(f"array_remove({WHOLE}, NULL)")
