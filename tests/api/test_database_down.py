"""Fail closed: with the database unreachable, no decision is issued and nothing is half-written;
when it returns, the service recovers without a restart."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from tests.audit.helpers import verify_whole
from tests.api.conftest import Keys, bearer, make_keys, make_settings
from tests.audit.helpers import TcpProxy, proxy_to


def count_entries(url: str) -> int:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq) as conn:
        row = conn.execute("SELECT count(*) FROM audit_leaves").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def proxied(api_database: str, tmp_path: Path) -> Iterator[tuple[TestClient, Services, Keys, TcpProxy]]:
    proxy, via_proxy = proxy_to(api_database)
    services = Services.start(make_settings(tmp_path, via_proxy))
    keys = make_keys(services)
    try:
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            yield client, services, keys, proxy
    finally:
        proxy.stop()
        services.close()


def test_database_down_gives_503_and_no_decision_then_recovers(proxied: tuple[TestClient, Services, Keys, TcpProxy], api_database: str) -> None:
    client, services, keys, proxy = proxied
    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    assert client.post("/v1/decisions", json=body, headers=bearer(keys.own_app)).status_code == 200
    before = count_entries(api_database)

    proxy.stop()
    for _ in range(5):
        response = client.post("/v1/decisions", json=body, headers=bearer(keys.own_app))
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] in ("audit_unavailable", "database_unavailable")
        assert "decision_id" not in response.text and "allowed" not in response.text
        assert response.headers["retry-after"] == "1"
    assert client.get("/readyz").status_code == 503
    assert count_entries(api_database) == before  # nothing written while down

    proxy.start()
    recovered = [client.post("/v1/decisions", json=body, headers=bearer(keys.own_app)) for _ in range(3)]
    assert [r.status_code for r in recovered][-1] == 200
    assert client.get("/readyz").status_code == 200
    answered = [r.json()["decision_id"] for r in recovered if r.status_code == 200]
    for decision_id in answered:
        assert client.get(f"/v1/decisions/{decision_id}", headers=bearer(keys.auditor)).status_code == 200
    assert verify_whole(services.store).valid
