"""Shared fixtures: a real PostgreSQL server and a fresh database per test that asks for one.

Which server: ``CLEARANCE_TEST_DATABASE_URL`` when set; else the machine's PostgreSQL at
127.0.0.1:5432 (database ``test``, trust auth) when it answers; else an embedded PostgreSQL
started from the ``pgserver`` wheel in a temporary directory. Never SQLite, never a mock.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = [
    "tests.bundles",  # bundle copies, git repositories, services on a copy
    "tests.reliability.figures",  # what the reliability suite proves, printed at the end
]
MACHINE_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _libpq(url: str) -> str:
    """SQLAlchemy URL -> a libpq connection string psycopg accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """SQLAlchemy URL of a maintenance database on a real PostgreSQL server."""
    url = os.environ.get("CLEARANCE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _port_open("127.0.0.1", 5432):
        yield MACHINE_PG
        return
    import pgserver  # embedded server from a pip wheel, for laptops without PostgreSQL

    tmp = tempfile.mkdtemp(prefix="clearance-test-pg-")
    # "delete": stopped and its data directory removed (with "stop" every run left 40-70 MB in /tmp,
    # one directory per pytest process).
    server = pgserver.get_server(tmp, cleanup_mode="delete")
    yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    server.cleanup()


def create_database(server_url: str, name: str) -> str:
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_database(pg_server_url: str) -> Iterator[str]:
    """An empty database of its own for one test, dropped afterwards; yields its URL."""
    name = f"clearance_t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    try:
        yield url
    finally:
        drop_database(pg_server_url, name)


@pytest.fixture
def migrated_database(fresh_database: str) -> str:
    """A fresh database brought to the newest schema revision; yields its URL."""
    from audit import upgrade

    upgrade(fresh_database)
    return fresh_database
