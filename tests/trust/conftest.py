"""A real second PostgreSQL role per test: created with a unique name, dropped afterwards.

Roles are cluster-wide, so each test's role is removed even when the test fails: its
privileges in the test's database first (``DROP OWNED BY``), then the role.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from api.cli import app
from tests.conftest import REPO, _libpq


@pytest.fixture
def env(migrated_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The CLI's environment: the test's database, a home of its own, no key configured."""
    values = {"CLEARANCE_DATABASE_URL": migrated_database, "CLEARANCE_HOME": str(tmp_path / "home"),
              "CLEARANCE_POLICY_DIR": str(REPO / "rego"), "CLEARANCE_APIKEY_CACHE_SECONDS": "0"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("CLEARANCE_SIGNING_KEY", "CLEARANCE_TRUSTED_KEYS"):
        monkeypatch.delenv(name, raising=False)
    return values


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


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
