"""Least privilege in PostgreSQL: what the service's database role may do, and nothing more.

The service appends to the log and reads keys; it never changes a signing key or an API key.
Those change only through the admin CLI (``clearance keys …``, ``clearance apikeys …``) run
with the tables' owner, and each change is itself an entry in the log (``kind = "key"``).
With the grants below, a stolen service role can neither register a key of its own, nor
un-revoke an API key, nor create an admin key: PostgreSQL refuses.

:data:`SERVICE_GRANTS` is the one list of what the service role gets; a new table of the log
is one line here. :func:`apply_service_grants` (``clearance db grant --role NAME``) creates or
reuses the role, revokes everything it holds in the schema, grants exactly the list, then
checks the role's *effective* privileges (inherited ones and PUBLIC's included) and refuses if
anything beyond the list remains. :func:`role_report` is the start-up check of the role the
service runs as. :class:`LeastPrivilegeStore` lets the writer start under such a role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy.engine import Engine

from ._db import sqlalchemy_url
from .errors import AuditError, AuditUnavailable, SigningKeyError
from .keys import PublicKey
from .store import AuditStore

__all__ = [
    "SERVICE_GRANTS",
    "GrantReport",
    "LeastPrivilegeStore",
    "RoleError",
    "RoleReport",
    "TableGrant",
    "apply_service_grants",
    "excess_privileges",
    "role_report",
]


@dataclass(frozen=True)
class TableGrant:
    """Privileges on one table (or view); ``columns`` narrows them to those columns.

    Sequences owned by a table the role may INSERT into (identity and serial columns) are
    granted USAGE and SELECT with it.
    """

    table: str
    privileges: tuple[str, ...]
    columns: tuple[str, ...] = ()


SELECT = ("SELECT",)
APPEND = ("SELECT", "INSERT")

# What the service's role may do. Append tables: SELECT, INSERT. Keys: SELECT only.
SERVICE_GRANTS: tuple[TableGrant, ...] = (
    # v2 log (migration 0008): leaves, blobs, tiles above level 0 and checkpoints are appended;
    # the head row moves forward in each appending transaction (a trigger refuses moving it back
    # or changing its origin).
    TableGrant("audit_blobs", APPEND),
    TableGrant("audit_leaves", APPEND),
    TableGrant("audit_tlog_nodes", APPEND),
    TableGrant("audit_tlog_checkpoints", APPEND),
    TableGrant("audit_tlog_head", SELECT),
    TableGrant("audit_tlog_head", ("UPDATE",), ("size", "root", "frontier", "recorded_at")),
    TableGrant("audit_log", SELECT),
    # Witnesses' cosignatures (0009), stored by the service's pusher.
    TableGrant("audit_witness_cosignatures", APPEND),
    # v1 chain: read-only for the service since v2 (verification, the v2 log's first leaf).
    TableGrant("audit_entries", SELECT),
    TableGrant("audit_checkpoints", SELECT),
    TableGrant("audit_entries_json", SELECT),
    TableGrant("audit_chain_head", SELECT),
    TableGrant("audit_signing_keys", SELECT),
    TableGrant("api_keys", SELECT),
    TableGrant("alembic_version", SELECT),  # the start-up schema check
)

_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_$]{0,62}")


class RoleError(AuditError):
    """The grants cannot be applied as asked (bad name, not the owner, a role too powerful)."""


@dataclass(frozen=True)
class GrantReport:
    """What ``apply_service_grants`` did: the role, whether it was created, the grants, notes."""

    role: str
    created: bool
    granted: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class RoleReport:
    """The role a connection runs as, and whether it has more power than the service needs."""

    user: str
    superuser: bool
    owner: bool
    excess: tuple[str, ...]

    def warning(self) -> str | None:
        """One sentence when the role is too powerful, else None."""
        if self.superuser:
            why = "a superuser"
        elif self.owner:
            why = "the owner of the audit tables"
        elif self.excess:
            why = "allowed " + ", ".join(self.excess[:4]) + (" …" if len(self.excess) > 4 else "")
        else:
            return None
        return (f"the service's database role {self.user!r} is {why}: anyone holding it can change "
                "signing keys or API keys; run `clearance db grant --role NAME` as the owner and "
                "connect as NAME (docs/audit.md, Trust model)")


def _check_name(role: str) -> str:
    if not _ROLE_NAME.fullmatch(role):
        raise RoleError(f"role name {role!r}: use lowercase letters, digits and _ (at most 63)")
    return role


def _libpq(url: str) -> str:
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _expected() -> set[tuple[str, str]]:
    return {(g.table, p) for g in SERVICE_GRANTS for p in g.privileges}


_EFFECTIVE_SQL = """
SELECT c.relname, p.priv, has_table_privilege(%(role)s, c.oid, p.priv) AS whole
FROM pg_class c CROSS JOIN unnest(%(privs)s::text[]) AS p(priv)
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (has_table_privilege(%(role)s, c.oid, p.priv)
       OR (p.priv IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
           AND has_any_column_privilege(%(role)s, c.oid, p.priv)))
ORDER BY 1, 2
"""
# A SECURITY DEFINER function runs as its owner: EXECUTE on one is the owner's power over what it
# does (audit_ensure_partitions creates tables as the owner). The service needs none.
_DEFINER_FUNCTIONS_SQL = """
SELECT p.oid::regprocedure::text FROM pg_proc p
WHERE p.pronamespace = current_schema()::regnamespace AND p.prosecdef
  AND has_function_privilege(%(role)s, p.oid, 'EXECUTE')
ORDER BY 1
"""
_SEQUENCES_SQL = """
SELECT c.relname, p.priv FROM pg_class c CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS p(priv)
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'S'
  AND has_sequence_privilege(%(role)s, c.oid, p.priv)
"""
_OWNED_SEQUENCES_SQL = """
SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
WHERE s.relkind = 'S' AND d.refobjid = to_regclass(%(table)s) AND d.deptype IN ('a', 'i')
"""


def excess_privileges(conn: psycopg.Connection, role: str) -> list[str]:
    """The privileges ``role`` holds in the current schema beyond :data:`SERVICE_GRANTS` (and
    ``EXECUTE`` on any SECURITY DEFINER function), counting inherited ones and PUBLIC's, as
    ``"INSERT on audit_signing_keys"`` strings."""
    expected = _expected()
    column_only = {(g.table, p) for g in SERVICE_GRANTS if g.columns for p in g.privileges}
    whole_too = {(g.table, p) for g in SERVICE_GRANTS if not g.columns for p in g.privileges}
    sequences = {s for g in SERVICE_GRANTS if "INSERT" in g.privileges for s in _owned_sequences(conn, g.table)}
    excess = []
    for table, priv, whole in conn.execute(_EFFECTIVE_SQL, {"role": role, "privs": list(_TABLE_PRIVILEGES)}):
        if (table, priv) not in expected:
            excess.append(f"{priv} on {table}")
        elif whole and (table, priv) in column_only and (table, priv) not in whole_too:
            excess.append(f"{priv} on every column of {table}")
    for seq, priv in conn.execute(_SEQUENCES_SQL, {"role": role}):
        if seq not in sequences or priv == "UPDATE":
            excess.append(f"{priv} on sequence {seq}")
    for (function,) in conn.execute(_DEFINER_FUNCTIONS_SQL, {"role": role}):
        excess.append(f"EXECUTE on {function}")
    return excess


def _owned_sequences(conn: psycopg.Connection, table: str) -> list[str]:
    return [row[0] for row in conn.execute(_OWNED_SEQUENCES_SQL, {"table": table})]


def apply_service_grants(url: str, role: str, *, password: str | None = None) -> GrantReport:
    """Make ``role`` the service's least-privilege role in the database at ``url`` (connect as
    the tables' owner). Idempotent: run it again after every ``clearance db upgrade``.

    Creates the role (``LOGIN``, with ``password`` if given) when it does not exist; refuses a
    superuser, the tables' owner, or the connecting role itself. Revokes everything the role
    holds on the schema's tables, sequences and functions, grants :data:`SERVICE_GRANTS`, and
    raises :class:`RoleError` if the role still has more (through a role it is a member of).
    """
    _check_name(role)
    ident = sql.Identifier(role)
    notes: list[str] = []
    try:
        with psycopg.connect(_libpq(url)) as conn:
            me, schema = conn.execute("SELECT current_user, current_schema()").fetchone()  # type: ignore[misc]
            missing = [g.table for g in SERVICE_GRANTS
                       if conn.execute("SELECT to_regclass(%s)", (g.table,)).fetchone()[0] is None]  # type: ignore[index]
            if missing:
                raise RoleError(f"tables {sorted(set(missing))} do not exist; run `clearance db upgrade` first")
            owner = conn.execute(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass('audit_entries')"
            ).fetchone()[0]  # type: ignore[index]
            if not conn.execute("SELECT pg_has_role(current_user, %s, 'USAGE')", (owner,)).fetchone()[0]:  # type: ignore[index]
                raise RoleError(f"connected as {me!r}, but the tables belong to {owner!r}: run this as the owner")
            if role in (me, owner):
                raise RoleError(f"role {role!r} owns the tables or runs this command; name another role for the service")
            row = conn.execute("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            created = row is None
            if created:
                statement = sql.SQL("CREATE ROLE {} LOGIN").format(ident)
                if password:
                    statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
                conn.execute(statement)
            else:
                if row[0]:
                    raise RoleError(f"role {role!r} is a superuser: every grant is moot; use another role")
                if not row[1]:
                    notes.append(f"role {role!r} cannot log in: grant it to the login role the service "
                                 f"uses (GRANT {role} TO …) or ALTER ROLE {role} LOGIN")
                if password:
                    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
            schema_ident = sql.Identifier(schema)
            for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
                conn.execute(sql.SQL("REVOKE ALL ON ALL {} IN SCHEMA {} FROM {}").format(
                    sql.SQL(kind), schema_ident, ident))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_ident, ident))
            granted = list(_grant(conn, ident, SERVICE_GRANTS))
            excess = excess_privileges(conn, role)
            if excess:
                parents = [r for (r,) in conn.execute(
                    "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                    "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s", (role,))]
                raise RoleError(f"role {role!r} still holds {', '.join(excess)} after the grants"
                                + (f", through its membership of {', '.join(parents)}" if parents else
                                   " (granted to PUBLIC)") + "; revoke that membership or grant and run again")
            conn.commit()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RoleError(f"PostgreSQL refused: {exc.diag.message_primary}; run this as the tables' owner") from None
    except psycopg.OperationalError as exc:
        raise AuditUnavailable(f"cannot connect to apply grants: {exc}") from None
    return GrantReport(role, created, tuple(granted), tuple(notes))


def _grant(conn: psycopg.Connection, ident: sql.Identifier, grants: Iterable[TableGrant]) -> Iterable[str]:
    for g in grants:
        privileges = sql.SQL(", ").join(
            sql.SQL("{} ({})").format(sql.SQL(p), sql.SQL(", ").join(map(sql.Identifier, g.columns)))
            if g.columns else sql.SQL(p) for p in g.privileges)
        conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(privileges, sql.Identifier(g.table), ident))
        cols = f" ({', '.join(g.columns)})" if g.columns else ""
        yield f"{', '.join(g.privileges)}{cols} on {g.table}"
        if "INSERT" in g.privileges:
            for seq in _owned_sequences(conn, g.table):
                conn.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(sql.Identifier(seq), ident))
                yield f"USAGE, SELECT on sequence {seq}"


def role_report(engine: Engine) -> RoleReport:
    """Who the service's connections run as: superuser? owner of the audit tables? anything
    beyond :data:`SERVICE_GRANTS`? (For the start-up warning; never raises on a query error.)"""
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        user, superuser, owner = conn.execute(
            "SELECT current_user, r.rolsuper, coalesce(pg_has_role(current_user, c.relowner, 'USAGE'), false) "
            "FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass('audit_entries') "
            "WHERE r.rolname = current_user").fetchone()  # type: ignore[misc]
        excess = () if superuser or owner else tuple(excess_privileges(conn, user))
        conn.rollback()
        return RoleReport(user, bool(superuser), bool(owner), excess)
    finally:
        raw.close()


class LeastPrivilegeStore(AuditStore):
    """An :class:`AuditStore` for a role that may not write ``audit_signing_keys``.

    The writer registers its key at start-up; under :data:`SERVICE_GRANTS` that INSERT is
    refused. This store reads first: a key the admin CLI registered starts the writer; a key
    nobody registered stops it with what to run (``clearance keys register``, as the owner).
    """

    def register_key(self, key: PublicKey) -> None:
        if key.key_id in self.keyring():
            return
        try:
            super().register_key(key)
        except AuditUnavailable as exc:
            raise SigningKeyError(
                f"signing key {key.key_id} is not registered in the database and this role may not "
                "register it; run `clearance keys register` with the tables' owner role "
                f"({exc})") from None
