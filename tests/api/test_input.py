"""Bad input gets a clear 4xx naming the field, never a 500, and records nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from tests.audit.helpers import verify_whole
from tests.api.conftest import Keys, bearer


def with_change(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def chain_length(services: Services) -> int:
    return verify_whole(services.store).checked


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("workload", "colour"), "blue", "workload.colour"),
        (("workload", "task"), "poetry", "workload.task"),
        (("workload", "monthly_active_users"), -5, "workload.monthly_active_users"),
        (("workload", "monthly_active_users"), "many", "workload.monthly_active_users"),
        (("workload", "max_price_per_mtok"), 1e300, "workload.max_price_per_mtok"),
        (("workload", "jurisdictions"), "EU", "workload.jurisdictions"),
        (("app_id",), None, "app_id"),
        (("context", "request_id"), "x" * 500, "context.request_id"),
    ],
)
def test_schema_errors_name_the_field(client: TestClient, keys: Keys, services: Services,
                                      path: tuple[str, ...], value: Any, field: str) -> None:
    before = chain_length(services)
    response = client.post("/v1/decisions", json=with_change(path, value), headers=bearer(keys.own_app))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in [f["field"] for f in error["fields"]], error
    assert chain_length(services) == before


def test_missing_workload_field(client: TestClient, keys: Keys) -> None:
    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    del body["workload"]["task"]
    response = client.post("/v1/decisions", json=body, headers=bearer(keys.own_app))
    assert response.status_code == 422
    assert {"field": "workload.task", "reason": "Field required"} in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "raw",
    [b"{", b"not json", b'{"app_id": "claims-summariser", "workload": ', b"\xff\xfe\x00", b"", b"[]", b"null", b"42"],
)
def test_malformed_bodies_get_4xx(client: TestClient, keys: Keys, raw: bytes) -> None:
    response = client.post("/v1/decisions", content=raw,
                           headers={**bearer(keys.own_app), "Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in ("malformed_json", "invalid_request")


def test_deep_nesting_is_refused_cleanly(client: TestClient, keys: Keys) -> None:
    depth = 20_000
    raw = b'{"app_id": "claims-summariser", "workload": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post("/v1/decisions", content=raw,
                           headers={**bearer(keys.own_app), "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text


def test_oversized_body_is_413(client: TestClient, keys: Keys, services: Services) -> None:
    body = with_change(("context", "request_id"), "x" * (services.settings.max_body_bytes + 10))
    response = client.post("/v1/decisions", json=body, headers=bearer(keys.own_app))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_oversized_chunked_body_is_413(client: TestClient, keys: Keys, services: Services) -> None:
    chunk = b" " * 8192
    limit = services.settings.max_body_bytes

    def stream() -> Any:
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    response = client.post("/v1/decisions", content=stream(),
                           headers={**bearer(keys.own_app), "Content-Type": "application/json"})
    assert response.status_code == 413


def test_unknown_app_for_simulation_names_app_id(client: TestClient, keys: Keys) -> None:
    response = client.post("/v1/policy/simulate", json=with_change(("app_id",), "no-such-app"),
                           headers=bearer(keys.admin))
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "app_id"


def test_bad_query_parameters(client: TestClient, keys: Keys) -> None:
    for params in ({"from_seq": "zero"}, {"from_seq": 0}, {"from_seq": 5, "to_seq": 2}):
        response = client.get("/v1/audit/verify", params=params, headers=bearer(keys.auditor))
        assert response.status_code == 422, (params, response.text)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_sent_as_json_is_refused(
    client: TestClient, keys: Keys, content_type: str
) -> None:
    response = client.post("/v1/decisions", content=json.dumps(DECISION_REQUEST_EXAMPLE),
                           headers={**bearer(keys.own_app), "Content-Type": content_type})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "(body)"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge+json"])
def test_json_content_types_are_read(client: TestClient, keys: Keys, content_type: str) -> None:
    response = client.post("/v1/decisions", content=json.dumps(DECISION_REQUEST_EXAMPLE),
                           headers={**bearer(keys.own_app), "Content-Type": content_type})
    assert response.status_code == 200, response.text
