"""The authorization matrix: every endpoint × every kind of caller, generated from one table
(tests/reliability/endpoints.py) and checked against the routes the app really has."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.apikeys import Role, create_key, revoke_key
from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.settings import Settings
from tests.api.conftest import bearer

from .conftest import running_services
from .endpoints import BY_ROUTE, CALLERS, ENDPOINTS, Access, Endpoint, app_routes, current_tile, expected_status
from .figures import Figures

ROUTES = app_routes(create_app(Settings(database_url="postgresql://unused/none")))


@dataclass(frozen=True)
class Callers:
    headers: dict[str, dict[str, str]]  # caller -> Authorization header
    revoked: dict[Access, str]  # a revoked key of the role the endpoint wants
    decision_id: str  # a recorded decision, for GET /v1/decisions/{id}


@pytest.fixture(scope="module")
def matrix(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Callers]]:
    with running_services(pg_server_url, tmp_path_factory.mktemp("authz"), "authz") as services:
        db = services.db

        def key(role: Role, app_id: str | None = None, *, revoked: bool = False) -> str:
            secret, principal = create_key(db, role=role, app_id=app_id)
            if revoked:
                revoke_key(db, principal.key_id)
            return secret

        def gateway_key(apps: list[str], *, revoked: bool = False) -> str:
            secret, principal = create_key(db, role=Role.gateway, app_id=None, apps=apps, gateway="litellm-main")
            if revoked:
                revoke_key(db, principal.key_id)
            return secret

        own = key(Role.app, "claims-summariser")
        headers = {
            "no_key": {},
            "malformed_key": {"Authorization": "Bearer not-a-key"},
            "unknown_key": bearer("clr_0123456789abcdef_" + "A" * 43),
            "app_own": bearer(own),
            "app_other": bearer(key(Role.app, "internal-helpdesk")),
            "gateway": bearer(gateway_key(["claims-summariser", "internal-helpdesk"])),
            "gateway_other": bearer(gateway_key(["internal-helpdesk"])),
            "auditor": bearer(key(Role.auditor)),
            "admin": bearer(key(Role.admin)),
        }
        revoked = {
            Access.app: key(Role.app, "claims-summariser", revoked=True),
            Access.auditor: key(Role.auditor, revoked=True),
            Access.admin: key(Role.admin, revoked=True),
        }
        revoked[Access.any_key] = revoked[Access.public] = revoked[Access.admin]
        revoked[Access.caller_app] = revoked[Access.reporter] = revoked[Access.app]
        revoked[Access.gateway] = revoked[Access.gateway_in_body] = gateway_key(["claims-summariser"], revoked=True)
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            made = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE, headers=bearer(own))
            assert made.status_code == 200, made.text
            yield client, Callers(headers, revoked, made.json()["decision_id"])


def call(client: TestClient, endpoint: Endpoint, caller: str, callers: Callers) -> httpx.Response:
    headers = (bearer(callers.revoked[endpoint.access]) if caller == "revoked_key"
               else callers.headers[caller])
    sample = endpoint.sample or endpoint.path
    tile = current_tile(client, callers.headers["auditor"]) if "{tile}" in sample else ""
    path = sample.format(decision_id=callers.decision_id, tile=tile)
    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE) if endpoint.decision_body else copy.deepcopy(endpoint.body)
    if endpoint.key_header != "authorization" and "Authorization" in headers:
        headers = {endpoint.key_header: headers["Authorization"].removeprefix("Bearer ")}
    return client.request(endpoint.method, path, json=body, headers=headers, follow_redirects=False)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.label for e in ENDPOINTS])
def test_matrix(matrix: tuple[TestClient, Callers], endpoint: Endpoint, caller: str, figures: Figures) -> None:
    assert endpoint.route in ROUTES, f"{endpoint.label} has a row but the app no longer routes it"
    client, callers = matrix
    expected = expected_status(endpoint, caller)
    response = call(client, endpoint, caller, callers)
    figures.matrix_cells += 1
    figures.matrix_endpoints.add(endpoint.label)
    assert response.status_code == expected, f"{caller} on {endpoint.label}: {response.text[:300]}"
    if endpoint.access is Access.gateway_in_body:
        # The verdict is in the body: cleared for the gateway key listing the app, refused for
        # every other caller, bad keys included.
        verdict = response.json().get("action", response.json().get("verdict"))
        assert verdict in (("NONE", True) if caller == "gateway" else ("BLOCKED", False)), response.text[:300]
        if caller != "gateway":
            assert response.json()["error"]["code"] in ("unauthorized", "forbidden")
    if expected in (401, 403):
        error = response.json()["error"]
        assert error["code"] == ("unauthorized" if expected == 401 else "forbidden")
        assert error["message"]
        assert "decision_id" not in response.text  # a refusal carries no decision
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_table_and_the_app_have_the_same_routes() -> None:
    """A new endpoint must be given its row (and so its expected statuses) before it ships, and
    an endpoint that disappears must lose its row: either way the matrix fails, never skips."""
    missing = sorted(ROUTES - set(BY_ROUTE))
    assert not missing, f"routes with no row in tests/reliability/endpoints.py: {missing}"
    gone = sorted(set(BY_ROUTE) - ROUTES)
    assert not gone, f"rows in tests/reliability/endpoints.py for routes the app does not have: {gone}"
    assert len(ENDPOINTS) == len(BY_ROUTE), "a route has two rows"


def test_an_app_key_cannot_decide_for_another_app(matrix: tuple[TestClient, Callers]) -> None:
    """The other direction of ``app_other``: the own key, a body naming another app."""
    client, callers = matrix
    body = {**copy.deepcopy(DECISION_REQUEST_EXAMPLE), "app_id": "internal-helpdesk"}
    response = client.post("/v1/decisions", json=body, headers=callers.headers["app_own"])
    assert response.status_code == 403
    assert "claims-summariser" in response.json()["error"]["message"]


def test_an_unknown_app_is_not_a_way_around(matrix: tuple[TestClient, Callers]) -> None:
    client, callers = matrix
    body = {**copy.deepcopy(DECISION_REQUEST_EXAMPLE), "app_id": "no-such-app"}
    response = client.post("/v1/decisions", json=body, headers=callers.headers["app_own"])
    assert response.status_code == 403


@pytest.mark.parametrize("scheme", ["Basic", "Token", "bearer", ""])
def test_other_schemes_or_forms_of_a_valid_key_are_refused(
    matrix: tuple[TestClient, Callers], scheme: str, tmp_path: Path
) -> None:
    client, callers = matrix
    secret = callers.headers["auditor"]["Authorization"].split(" ", 1)[1]
    value = f"{scheme} {secret}".strip() if scheme != "bearer" else f"bearer {secret}"
    response = client.get("/v1/audit/verify", headers={"Authorization": value})
    # RFC 7235: the scheme is case-insensitive, so "bearer" is a valid form of the same key.
    assert response.status_code == (200 if scheme == "bearer" else 401), response.text
    assert secret not in response.text
