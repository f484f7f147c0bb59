"""Compliance search: one GIN index over every equality/containment filter of an entry.

``audit_facets(...)`` turns an entry's queryable columns into prefixed keys (``a:<app>``,
``o:<outcome>``, ``t:<tier>``, ``s:<sector>``, ``r:<revision>``, ``mc:``/``md:<model>`` for
cleared/denied, ``c:<reason code>``, ``p:<provenance of a cleared model>``, and ``tp:``/``sp:``/``ap:`` pairs of
tier, sector or app with that provenance; no key for "model cleared or denied": every decision
lists every route, so it would select nothing). A GIN index
on it answers any combination of those filters with one exact bitmap (posting lists are
intersected inside the index), which is what keeps a rare combination — "open Chinese models
cleared in the public sector: none" — fast: without it PostgreSQL walks the time index
backwards through every entry looking for a match that does not exist. Used by
``audit/queries.py``; derived only from columns that verification checks against the signed
bytes, so it adds nothing to trust.

Revision ID: 0003_audit_facets
Revises: 0002_api_keys
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_audit_facets"
down_revision: str | None = "0002_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# plpgsql, not SQL: never inlined, so the index expression and the queries' expression are the
# same function call. Keep the argument list in sync with audit/queries.py (FACETS_SQL).
FACETS_FUNCTION = """
CREATE FUNCTION audit_facets(app_id text, outcome text, regulatory_tier text, sector text,
                             policy_revision text, models_allowed text[], models_denied text[],
                             reason_codes text[], provenances_allowed text[])
RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN array_remove(ARRAY['a:' || app_id, 'o:' || outcome, 't:' || regulatory_tier,
                              's:' || sector, 'r:' || policy_revision], NULL)
        || ARRAY(SELECT 'mc:' || m FROM unnest(models_allowed) AS m)
        || ARRAY(SELECT 'md:' || m FROM unnest(models_denied) AS m)
        || ARRAY(SELECT 'c:' || c FROM unnest(reason_codes) AS c)
        || ARRAY(SELECT 'p:' || p FROM unnest(provenances_allowed) AS p)
        -- Pairs with the provenance of a cleared model: "open Chinese models cleared for
        -- regulated workloads" is rare although both halves are common, and one short posting
        -- list answers it where intersecting two long ones would not.
        || ARRAY(SELECT 'tp:' || regulatory_tier || ':' || p FROM unnest(provenances_allowed) AS p
                 WHERE regulatory_tier IS NOT NULL)
        || ARRAY(SELECT 'sp:' || sector || ':' || p FROM unnest(provenances_allowed) AS p
                 WHERE sector IS NOT NULL)
        || ARRAY(SELECT 'ap:' || app_id || ':' || p FROM unnest(provenances_allowed) AS p
                 WHERE app_id IS NOT NULL);
END
$$
"""
FACETS_INDEX = """
CREATE INDEX ix_audit_entries_facets ON audit_entries USING gin (
    audit_facets(app_id, outcome, regulatory_tier, sector, policy_revision, models_allowed,
                 models_denied, reason_codes, provenances_allowed))
"""


def upgrade() -> None:
    op.execute(FACETS_FUNCTION)
    op.execute(FACETS_INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_audit_entries_facets")
    op.execute("DROP FUNCTION IF EXISTS audit_facets(text, text, text, text, text, text[], text[], "
               "text[], text[])")
