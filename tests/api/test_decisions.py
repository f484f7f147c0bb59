"""POST /v1/decisions end to end: decided, recorded, verifiable, read back."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from audit.logverify import verify_log
from audit.tlog import verify_receipt
from clearance_client.models import Decision as ClientDecision
from clearance_client.receipt import verify_receipt as client_verify_receipt
from tests.api.conftest import Keys, bearer


def request_body(**workload: Any) -> dict[str, Any]:
    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    body["workload"].update(workload)
    return body


def test_decision_is_recorded_signed_and_verifiable(client: TestClient, keys: Keys, services: Services) -> None:
    response = client.post("/v1/decisions", json=request_body(max_price_per_mtok=50.0), headers=bearer(keys.own_app))
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["outcome"] in ("allow", "deny")
    assert set(decision) == {"decision_id", "outcome", "allowed", "denied", "policy_revision", "audit"}
    assert decision["policy_revision"] == services.policy.current.revision
    receipt = decision["audit"]
    assert set(receipt) == {"seq", "leaf_hash", "recorded_at", "entry", "checkpoint", "inclusion_proof"}
    # The app checks its receipt offline with the log's pinned verifier key alone.
    pinned = services.trusted_verifiers()
    signed = verify_receipt(receipt, trusted_keys=pinned, decision=decision)
    assert signed.size >= receipt["seq"]
    # And with the client's own implementation (its JCS, Merkle and note code), from key strings.
    vkeys = [v.verifier_key for v in pinned]
    verified = client_verify_receipt(ClientDecision.from_json(decision), vkeys, app_id="claims-summariser")
    assert verified.seq == receipt["seq"] and verified.tree_size == signed.size

    entry = client.get(f"/v1/decisions/{decision['decision_id']}", headers=bearer(keys.auditor))
    assert entry.status_code == 200, entry.text
    stored = entry.json()
    assert stored["seq"] == receipt["seq"] and stored["leaf_hash"] == receipt["leaf_hash"]
    assert stored["verification"]["valid"] is True and stored["status"]["overall"] == "valid"
    verify_receipt(stored["receipt"], trusted_keys=pinned, decision=decision)  # against the newest checkpoint
    body = stored["body"]
    assert body["decision_id"] == decision["decision_id"] and "input" not in body and "result" not in body
    assert stored["result"] == {k: v for k, v in decision.items() if k not in ("audit", "decision_id")}
    assert stored["input"]["workload"]["monthly_active_users"] == 1_200_000
    assert stored["input"]["app"]["id"] == "claims-summariser"  # entitlements from apps.yaml
    assert body["caller_key_id"] == keys.own_app.split("_")[1]
    assert body["context"] == {"request_id": "req-7f3a"}
    assert body["engine"] == "regorus"

    result = verify_log(services.store, trusted=pinned)
    assert result.valid and result.checked >= 1


def test_verify_endpoint_reports_a_valid_chain(client: TestClient, keys: Keys) -> None:
    for _ in range(3):
        assert client.post("/v1/decisions", json=request_body(), headers=bearer(keys.own_app)).status_code == 200
    answer = client.get("/v1/audit/verify", params={"from_seq": 1}, headers=bearer(keys.auditor))
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is True and body["checked"] >= 3 and body["first_bad_seq"] is None


def test_unknown_decision_is_404(client: TestClient, keys: Keys) -> None:
    answer = client.get("/v1/decisions/0190f000-0000-7000-8000-000000000000", headers=bearer(keys.auditor))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_public_keys_are_served_without_auth(client: TestClient, services: Services) -> None:
    answer = client.get("/v1/audit/keys")
    assert answer.status_code == 200
    ids = [k["key_id"] for k in answer.json()["keys"]]
    assert services.writer._key.key_id in ids  # noqa: SLF001 - the key the service signs with


def test_policy_info_and_simulation(client: TestClient, keys: Keys, services: Services) -> None:
    info = client.get("/v1/policy", headers=bearer(keys.admin)).json()
    assert info["revision"] == services.policy.current.revision
    assert len(info["models"]) == 18 and "claims-summariser" in info["apps"]
    assert {"LICENCE_MAU_CAP", "LICENCE_TERRITORY"} <= set(info["reason_codes"])

    before = services.store.log_head().size
    sim = client.post("/v1/policy/simulate", json=request_body(monthly_active_users=800_000_000), headers=bearer(keys.admin))
    assert sim.status_code == 200, sim.text
    assert sim.json()["simulated"] is True and "decision_id" not in sim.json()
    denied = {(d["model"], r["code"]) for d in sim.json()["denied"] for r in d["reasons"]}
    assert ("hunyuan-a13b", "LICENCE_TERRITORY") in denied  # the example's jurisdictions include EU
    # The org's licensee figures decide the Llama 4 cap; the workload's 800M is only recorded.
    assert ("llama-4-maverick", "LICENCE_MAU_CAP") not in denied
    assert services.store.log_head().size == before  # nothing recorded


def test_health_readiness_and_metrics(client: TestClient, keys: Keys) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    client.post("/v1/decisions", json=request_body(), headers=bearer(keys.own_app))
    text = client.get("/metrics").text
    for name in ("clearance_decisions_total", "clearance_decision_seconds_bucket", "clearance_audit_batch_size_bucket", "clearance_audit_failures_total"):
        assert name in text


def test_openapi_documents_every_endpoint_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/decisions", "/v1/decisions/{decision_id}", "/v1/audit/keys", "/v1/audit/verify",
                 "/v1/audit/checkpoint", "/v1/audit/proof/inclusion", "/v1/audit/proof/consistency",
                 "/v1/policy", "/v1/policy/simulate", "/healthz", "/readyz", "/metrics"):
        assert path in paths, path
    post = paths["/v1/decisions"]["post"]
    assert post["requestBody"]["content"]["application/json"]["examples"]
    for status in ("401", "403", "413", "422", "503"):
        assert "example" in post["responses"][status]["content"]["application/json"], status
