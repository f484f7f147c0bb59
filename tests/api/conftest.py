"""The real app over a real PostgreSQL: services started as in production, driven through HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.apikeys import Role, create_key, revoke_key
from api.app import create_app
from api.services import Services
from api.settings import Settings
from audit import init_key
from tests.conftest import REPO, create_database, drop_database


@dataclass(frozen=True)
class Keys:
    own_app: str  # app key of claims-summariser
    other_app: str  # app key of internal-helpdesk
    auditor: str
    admin: str
    revoked: str  # a revoked auditor key


def make_settings(home: Path, database_url: str, **overrides: object) -> Settings:
    key_file = home / "signing.key"
    if not key_file.exists():
        init_key(key_file)
    defaults: dict[str, object] = {
        "apikey_cache_seconds": 0,  # revocations take effect at once in tests
        "audit_batch_ms": 1,
    }
    return Settings(
        database_url=database_url,
        signing_key=str(key_file),
        policy_dir=REPO / "rego",
        home=home,
        **(defaults | overrides),  # type: ignore[arg-type]
    )


def make_keys(services: Services) -> Keys:
    db = services.db
    revoked, principal = create_key(db, role=Role.auditor, app_id=None)
    revoke_key(db, principal.key_id)
    return Keys(
        own_app=create_key(db, role=Role.app, app_id="claims-summariser")[0],
        other_app=create_key(db, role=Role.app, app_id="internal-helpdesk")[0],
        auditor=create_key(db, role=Role.auditor, app_id=None)[0],
        admin=create_key(db, role=Role.admin, app_id=None)[0],
        revoked=revoked,
    )


@pytest.fixture(scope="module")
def api_database(pg_server_url: str) -> Iterator[str]:
    """One migrated database per test module (entries accumulate; tests look up their own)."""
    from audit import upgrade

    name = f"clearance_api_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    upgrade(url)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def api_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service's home (its signing key): a module whose data another key signed overrides it."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def services(api_database: str, api_home: Path) -> Iterator[Services]:
    started = Services.start(make_settings(api_home, api_database))
    yield started
    started.close()


@pytest.fixture(scope="module")
def keys(services: Services) -> Keys:
    return make_keys(services)


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
