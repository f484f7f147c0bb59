"""Client and AsyncClient against a stub of Clearance's decision endpoint on loopback."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tlog_factory import NoteSigner, decision_json

from clearance_client import (
    AsyncClient,
    ClearanceError,
    Client,
    Decision,
    Forbidden,
    InvalidRequest,
    ReceiptError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)

WORKLOAD = {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
            "data_classification": "confidential", "commercial": True}


def error(code: str, message: str, fields=()) -> dict:
    return {"error": {"code": code, "message": message, "fields": [{"field": f, "reason": r} for f, r in fields]}}


def test_decide_sends_the_contract_body_and_key(clearance):
    with Client(clearance.url, "clr_k_secret") as client:
        decision = client.decide("claims-summariser", WORKLOAD, {"request_id": "req-1"})
    sent = clearance.decisions[0]
    assert sent["body"] == {"app_id": "claims-summariser", "workload": WORKLOAD, "context": {"request_id": "req-1"}}
    assert sent["authorization"] == "Bearer clr_k_secret"
    assert decision.outcome == "allow" and decision.is_allowed
    assert [r.route for r in decision.allowed] == [("gemma-4-31b", "self-hosted"), ("gpt-5-mini", "openai-api")]
    assert decision.allowed[0].obligations[0].startswith("attribution:")
    assert decision.denials("llama-4-maverick")[0].codes == ("LICENCE_MAU_CAP", "DATA_RESIDENCY")
    assert decision.audit["seq"] == 1


def test_decide_by_workload_profile(clearance):
    with Client(clearance.url, "k") as client:
        client.decide("claims-summariser", None, workload_profile="claims-batch")
    assert clearance.decisions[0]["body"] == {"app_id": "claims-summariser", "workload_profile": "claims-batch"}


def test_decide_needs_an_app_and_a_workload(clearance):
    with Client(clearance.url) as client:
        with pytest.raises(ValueError, match="workload"):
            client.decide("claims-summariser", None)
        with pytest.raises(ValueError, match="app_id"):
            client.decide("", WORKLOAD)
        with pytest.raises(TypeError):
            client.decide("a", ["not", "a", "mapping"])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="workload_profile"):
            client.decide("a", None, workload_profile=3)  # type: ignore[arg-type]
    assert clearance.decisions == []


def test_invalid_request_carries_the_fields(clearance):
    clearance.status, clearance.payload = 422, error(
        "invalid_request", "the workload is invalid",
        [("workload.task", "unknown value 'poetry'"), ("workload.commercial", "must be a boolean")])
    with Client(clearance.url) as client, pytest.raises(InvalidRequest) as info:
        client.decide("a", WORKLOAD)
    assert info.value.status == 422 and info.value.code == "invalid_request"
    assert [(f.field, f.reason) for f in info.value.fields] == [
        ("workload.task", "unknown value 'poetry'"), ("workload.commercial", "must be a boolean")]
    assert "workload.task: unknown value" in info.value.diagnostics()


@pytest.mark.parametrize(("status", "kind"), [
    (400, InvalidRequest), (413, InvalidRequest), (401, Unauthorized), (403, Forbidden), (429, Unavailable),
    (500, Unavailable), (502, Unavailable), (503, Unavailable), (504, Unavailable), (404, UnexpectedResponse),
    (302, UnexpectedResponse), (204, UnexpectedResponse)])
def test_statuses_map_to_errors_never_to_a_decision(clearance, status, kind):
    clearance.status, clearance.payload = status, error("x", f"status {status}")
    with Client(clearance.url) as client, pytest.raises(kind) as info:
        client.decide("a", WORKLOAD)
    assert isinstance(info.value, ClearanceError) and info.value.diagnostics()


def test_unavailable_keeps_retry_after(clearance):
    clearance.status, clearance.payload = 503, error("audit_unavailable", "no durable entry")
    clearance.headers = {"retry-after": "2"}
    with Client(clearance.url) as client, pytest.raises(Unavailable) as info:
        client.decide("a", WORKLOAD)
    assert (info.value.status, info.value.retry_after) == (503, 2.0)
    assert "no durable entry" in str(info.value) and "retrying after 2 s" in info.value.diagnostics()


def test_403_is_forbidden_and_401_is_a_kind_of_forbidden(clearance):
    clearance.status, clearance.payload = 403, error("forbidden", "this key decides for claims-summariser only")
    with Client(clearance.url) as client, pytest.raises(Forbidden) as info:
        client.decide("other-app", WORKLOAD)
    assert not isinstance(info.value, Unauthorized) and info.value.code == "forbidden"
    clearance.status = 401
    with Client(clearance.url) as client, pytest.raises(Forbidden):
        client.decide("a", WORKLOAD)


def test_connection_refused_is_unavailable(dead_url):
    with Client(dead_url) as client, pytest.raises(Unavailable) as info:
        client.decide("a", WORKLOAD)
    assert info.value.status is None and "ConnectError" in str(info.value)


def test_timeout_is_unavailable(clearance):
    clearance.delay = 1.0
    with Client(clearance.url, timeout=0.2) as client, pytest.raises(Unavailable, match="timed out"):
        client.decide("a", WORKLOAD)


@pytest.mark.parametrize("payload", [
    b"not json", b"[]", b'{"outcome": "allow"}', b'{"decision_id": "d", "outcome": "maybe", "allowed": [], "denied": [], "policy_revision": "r"}',
    b'{"decision_id": "d", "outcome": "allow", "allowed": [], "denied": [], "policy_revision": "r"}',
    b'{"decision_id": "d", "outcome": "deny", "allowed": [{"model": "m", "deployment": "x", "rank": 1}], "denied": [], "policy_revision": "r"}',
    b'{"decision_id": "d", "outcome": "allow", "allowed": [{"model": "m", "deployment": "x", "rank": "1"}], "denied": [], "policy_revision": "r"}',
    b'{"decision_id": "d", "outcome": "deny", "outcome": "allow", "allowed": [{"model": "m", "deployment": "x", "rank": 1}], "denied": [], "policy_revision": "r"}',
    b'{"decision_id": "d", "outcome": "allow", "allowed": [{"model": "m", "deployment": "x", "rank": NaN}], "denied": [], "policy_revision": "r"}',
])
def test_a_200_that_is_not_a_decision_is_an_error(clearance, payload):
    clearance.status, clearance.payload = 200, payload
    with Client(clearance.url) as client, pytest.raises(UnexpectedResponse) as info:
        client.decide("a", WORKLOAD)
    assert info.value.status == 200


def test_trusted_keys_verify_every_decision(clearance):
    with Client(clearance.url, trusted_keys=[clearance.log.signer.vkey]) as client:
        assert client.decide("claims-summariser", WORKLOAD).audit["seq"] == 1

    def tamper(decision):
        decision["allowed"].reverse()  # the app would be told another ranking than the log holds
    clearance.tamper = tamper
    with Client(clearance.url, trusted_keys=[clearance.log.signer.vkey]) as client, pytest.raises(ReceiptError) as info:
        client.decide("claims-summariser", WORKLOAD)
    assert info.value.check == "entry.result_sha256"


def test_trusted_keys_reject_a_log_signed_by_another_key(clearance):
    with Client(clearance.url, trusted_keys=[NoteSigner(clearance.log.signer.name).vkey]) as client:
        with pytest.raises(ReceiptError, match="checkpoint.signature"):
            client.decide("claims-summariser", WORKLOAD)


def test_trusted_keys_check_the_app(clearance):
    clearance.decision_for = lambda body: decision_json()
    original = clearance.log.append

    def append_as_other_app(decision, *, app_id):
        return original(decision, app_id="someone-else")
    clearance.log.append = append_as_other_app  # type: ignore[method-assign]
    with Client(clearance.url, trusted_keys=[clearance.log.signer.vkey]) as client, pytest.raises(ReceiptError) as info:
        client.decide("claims-summariser", WORKLOAD)
    assert info.value.check == "entry.app_id"


def test_from_env(clearance, monkeypatch, tmp_path):
    keys = tmp_path / "trusted.keys"
    keys.write_text(clearance.log.signer.vkey + "\n")
    monkeypatch.setenv("CLEARANCE_URL", clearance.url)
    monkeypatch.setenv("CLEARANCE_API_KEY", "clr_env")
    monkeypatch.setenv("CLEARANCE_TRUSTED_KEYS", str(keys))
    with Client.from_env() as client:
        client.decide("claims-summariser", WORKLOAD)
    assert clearance.decisions[0]["authorization"] == "Bearer clr_env"
    monkeypatch.delenv("CLEARANCE_URL")
    with pytest.raises(ValueError, match="CLEARANCE_URL"):
        Client.from_env()


def test_repr_never_shows_the_key(clearance):
    client = Client(clearance.url, "clr_k_topsecret")
    assert "topsecret" not in repr(client)
    client.close()


def test_async_client(clearance, dead_url):
    async def run():
        async with AsyncClient(clearance.url, "k", trusted_keys=[clearance.log.signer.vkey]) as client:
            decision = await client.decide("claims-summariser", WORKLOAD)
            assert isinstance(decision, Decision) and decision.is_allowed
            clearance.status, clearance.payload = 422, error("invalid_request", "bad", [("workload.sector", "x")])
            with pytest.raises(InvalidRequest) as info:
                await client.decide("claims-summariser", WORKLOAD)
            assert info.value.fields[0].field == "workload.sector"
        async with AsyncClient(dead_url) as client:
            with pytest.raises(Unavailable):
                await client.decide("a", WORKLOAD)
    asyncio.run(run())


def test_a_given_http_client_is_used_and_left_open(clearance):
    http = httpx.Client(timeout=3)
    with Client(clearance.url, http_client=http) as client:
        client.decide("a", WORKLOAD)
    assert not http.is_closed
    http.close()
