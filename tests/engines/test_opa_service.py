"""The service with ``CLEARANCE_ENGINE=opa``: the audit entry names the engine, and an OPA
failure is a 503 with no decision and no entry (fail closed). Real app, real PostgreSQL; the
OPA is the documented-API replay server (tests/engines/replay.py) answering with regorus'
decision for the same input.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from policy import Bundle, DecisionRequest, RegorusEngine
from policy.decision import Caller, build_input
from policy.opa import revision_short
from tests.api.conftest import Keys, api_database, bearer, make_keys, make_settings  # noqa: F401 - fixture
from tests.engines.replay import Reply, ReplayServer, install_routes, replay_server


@pytest.fixture(scope="module")
def opa() -> Iterator[ReplayServer]:
    with replay_server() as server:
        install_routes(server)
        yield server


@pytest.fixture(scope="module")
def services(api_database: str, opa: ReplayServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:  # noqa: F811
    settings = make_settings(tmp_path_factory.mktemp("home"), api_database, engine="opa", opa_url=opa.url,
                             opa_timeout_seconds=1.0)  # generous: this machine is shared
    started = Services.start(settings)
    yield started
    started.close()


@pytest.fixture(scope="module")
def keys(services: Services) -> Keys:
    return make_keys(services)


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), raise_server_exceptions=False) as test_client:
        yield test_client


def body(**workload: Any) -> dict[str, Any]:
    out = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    out["workload"].update(workload)
    return out


def answer(opa: ReplayServer, bundle: Bundle, request_body: dict[str, Any], keys: Keys, *replies: Reply) -> dict[str, Any]:
    """Make the stand-in answer the decision query; returns regorus' decision for the input."""
    request = DecisionRequest.model_validate(request_body)
    policy_input = build_input(bundle, request, Caller(key_id=keys.own_app.split("_")[1], role="app"))
    expected = RegorusEngine(bundle).evaluate(policy_input)
    path = f"/v1/data/clearance/revisions/r{revision_short(bundle.revision)}/decision"
    opa.route("POST", path, *(replies or (Reply(200, {"result": expected}),)))
    return expected


def test_decisions_through_opa_are_recorded_with_engine_opa(client: TestClient, keys: Keys, services: Services,
                                                           opa: ReplayServer) -> None:
    bundle = services.policy.current.bundle
    assert services.policy.current.engine.name == "opa"
    expected = answer(opa, bundle, body(), keys)
    response = client.post("/v1/decisions", json=body(), headers=bearer(keys.own_app))
    assert response.status_code == 200, response.text
    decision = response.json()
    assert {k: decision[k] for k in ("outcome", "allowed", "denied")} == expected
    stored = client.get(f"/v1/decisions/{decision['decision_id']}", headers=bearer(keys.auditor)).json()
    assert stored["body"]["engine"] == "opa"
    assert stored["body"]["policy_revision"] == bundle.revision
    sent = opa.seen("POST")[-1]
    assert sent.json()["input"]["app"]["id"] == "claims-summariser"

    info = client.get("/v1/policy", headers=bearer(keys.admin)).json()
    assert info["engine"] == "opa"


@pytest.mark.parametrize(("reply", "said"), [
    (Reply.of("error_500_eval"), "OPA at http://127.0.0.1"),
    (Reply.of("data_post_undefined"), "the decision is undefined"),
    (Reply(200, {"result": {"outcome": "allow"}}), "invalid decision"),  # caught by decision assembly
    (Reply(200, {}, delay=2.5), "did not answer within 1 s"),
], ids=["500", "undefined", "malformed", "timeout"])
def test_an_opa_failure_is_a_503_without_decision_or_entry(client: TestClient, keys: Keys, services: Services,
                                                           opa: ReplayServer, reply: Reply, said: str) -> None:
    bundle = services.policy.current.bundle
    request_body = body(monthly_active_users=len(opa.requests) + 17)  # an input not decided before
    answer(opa, bundle, request_body, keys, reply)
    head = _last_seq(services)
    response = client.post("/v1/decisions", json=request_body, headers=bearer(keys.own_app))
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "policy_evaluation_failed" and "no route is cleared" in error["message"]
    assert said in error["message"]
    assert _last_seq(services) == head, "no audit entry for a decision that was not made"


def _last_seq(services: Services) -> int | None:
    with services.store.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT max(seq) FROM audit_leaves").scalar()  # type: ignore[no-any-return]
