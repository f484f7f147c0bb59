"""Every endpoint × every kind of caller, from one table."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.schemas import DECISION_REQUEST_EXAMPLE
from tests.api.conftest import Keys, bearer

OTHER_APP_BODY = {**copy.deepcopy(DECISION_REQUEST_EXAMPLE), "app_id": "internal-helpdesk"}
UNKNOWN_ID = "0190f000-0000-7000-8000-000000000000"

CALLERS = ("none", "malformed", "unknown", "revoked", "own_app", "other_app", "auditor", "admin")

# endpoint -> expected status per caller. "own_app" decides for claims-summariser (its app);
# "other_app" holds a key of internal-helpdesk and sends the same claims-summariser body.
MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/v1/decisions"): {"own_app": 200, "other_app": 403, "auditor": 403, "admin": 403},
    ("GET", f"/v1/decisions/{UNKNOWN_ID}"): {"own_app": 403, "other_app": 403, "auditor": 404, "admin": 403},
    ("GET", "/v1/audit/verify"): {"own_app": 403, "other_app": 403, "auditor": 200, "admin": 403},
    ("GET", "/v1/policy"): {"own_app": 200, "other_app": 200, "auditor": 200, "admin": 200},
    ("POST", "/v1/policy/simulate"): {"own_app": 403, "other_app": 403, "auditor": 403, "admin": 200},
}
PUBLIC = [("GET", "/v1/audit/keys"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]


def headers_for(caller: str, keys: Keys) -> dict[str, str]:
    match caller:
        case "none":
            return {}
        case "malformed":
            return {"Authorization": "Bearer not-a-key"}
        case "unknown":
            return bearer("clr_0123456789abcdef_" + "A" * 43)
        case _:
            return bearer(getattr(keys, "revoked" if caller == "revoked" else caller))


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    body = DECISION_REQUEST_EXAMPLE if method == "POST" else None
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", list(MATRIX), ids=lambda e: f"{e[0]} {e[1]}")
def test_matrix(client: TestClient, keys: Keys, endpoint: tuple[str, str], caller: str) -> None:
    expected = MATRIX[endpoint].get(caller, 401)  # no, malformed, unknown, revoked: who are you?
    response = call(client, *endpoint, headers_for(caller, keys))
    assert response.status_code == expected, response.text
    if expected in (401, 403):
        error = response.json()["error"]
        assert error["code"] == ("unauthorized" if expected == 401 else "forbidden")
        assert error["message"]
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("endpoint", PUBLIC, ids=lambda e: e[1])
def test_public_endpoints_need_no_key(client: TestClient, endpoint: tuple[str, str]) -> None:
    assert call(client, *endpoint, {}).status_code == 200


def test_app_key_cannot_decide_for_another_app(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/decisions", json=OTHER_APP_BODY, headers=bearer(keys.own_app))
    assert response.status_code == 403
    assert "claims-summariser" in response.json()["error"]["message"]


def test_keys_never_echoed_in_errors(client: TestClient, keys: Keys) -> None:
    secret = keys.revoked
    response = client.get("/v1/audit/verify", headers=bearer(secret))
    assert response.status_code == 401 and secret not in response.text
    assert secret.split("_")[2] not in response.text
