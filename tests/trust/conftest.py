"""A real second PostgreSQL role per test: created with a unique name, dropped afterwards.

Roles are cluster-wide, so each test's role is removed even when the test fails: its
privileges in the test's database first (``DROP OWNED BY``), then the role.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import _libpq


def as_role(url: str, role: str) -> str:
    """The same database, logged in as ``role`` (the machine's PostgreSQL trusts local logins)."""
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


@pytest.fixture
def role_name(migrated_database: str) -> Iterator[str]:
    """A unique role name; the role (if a test created it) is dropped at the end."""
    name = f"clr_svc_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(_libpq(migrated_database), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        if exists:
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
            conn.execute(f'DROP ROLE "{name}"')
