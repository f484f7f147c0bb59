"""Fixtures of the reliability suite, and the figures it prints at the end of the run.

Run it: ``pytest tests/reliability`` (part of the default run; every test here is marked
``reliability``; the parts that take more than a few seconds are also ``slow``).
``CLEARANCE_LONG=1`` selects the long mode: more fault cycles (8 database crashes, 6 SIGKILLs,
also with 2 workers), 5000 decisions over several servers, ten times the fuzz cases (randomised).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from api.apikeys import Role, create_key, revoke_key
from api.services import Services
from audit import init_key, upgrade
from audit._db import sqlalchemy_url
from tests.api.conftest import make_settings
from tests.conftest import create_database, drop_database

from .cluster import PgCluster, find_bindir
from .figures import LONG
from .server import ServerProcess, server_env



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is marked ``reliability`` (``-m reliability`` runs the suite)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def own_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL of this test session's own (never the machine's shared one)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) found to run a server of our own")
    cluster = PgCluster.create(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@contextlib.contextmanager
def running_services(server_url: str, home: Path, prefix: str, **overrides: Any) -> Iterator[Services]:
    """Services started as in production on a new migrated database; closed and dropped after."""
    name = f"clearance_{prefix}_{uuid.uuid4().hex[:10]}"
    url = create_database(server_url, name)
    services: Services | None = None
    try:
        upgrade(url)
        services = Services.start(make_settings(home, url).model_copy(update=overrides))
        yield services
    finally:
        if services is not None:
            services.close()
        drop_database(server_url, name)


def make_api_key(url: str, role: Role, app_id: str | None = None, *, revoked: bool = False,
                 apps: list[str] | None = None, gateway: str | None = None) -> str:
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        key, principal = create_key(engine, role=role, app_id=app_id, apps=apps, gateway=gateway)
        if revoked:
            revoke_key(engine, principal.key_id)
    finally:
        engine.dispose()
    return key


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "signing.key"
    init_key(path)
    return path


@pytest.fixture
def start_server(tmp_path: Path, key_file: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``python -m api serve`` on a database; every server started is stopped afterwards."""
    started: list[ServerProcess] = []

    def start(database_url: str, *, workers: int = 1, signing_key: str | None = None,
              **env: str) -> ServerProcess:
        name = f"server-{len(started)}-{uuid.uuid4().hex[:6]}"
        home = tmp_path / name
        home.mkdir()
        server = ServerProcess(
            env=server_env(database_url=database_url, home=home,
                           signing_key=signing_key or str(key_file), **env),
            log_path=tmp_path / f"{name}.log",
            workers=workers,
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()
