"""The gate cannot be opened by what the caller leaves out, misspells or repeats (HTTP level).

Each repro of the issue that found these holes, against the real service and its database: the
stricter decision, or a 4xx naming the field, and never a decision without its audit entry.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.apikeys import Role, create_key
from api.services import Services
from tests.api.conftest import bearer

CN_MODELS = {"glm-5", "glm-5.1", "deepseek-v4", "deepseek-v3.2", "qwen3-coder-next", "qwen3.6-plus", "mano-p-1.0"}


@pytest.fixture(scope="module")
def app_keys(services: Services) -> dict[str, str]:
    return {app: create_key(services.db, role=Role.app, app_id=app)[0]
            for app in ("citizen-services", "internal-helpdesk", "claims-summariser", "eu-patient-records")}


def decide(client: TestClient, key: str, app_id: str, workload: dict[str, Any] | None = None, **extra: Any) -> Any:
    body: dict[str, Any] = {"app_id": app_id, **extra}
    if workload is not None:
        body["workload"] = workload
    return client.post("/v1/decisions", json=body, headers=bearer(key))


def entry(client: TestClient, auditor: str, decision_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/decisions/{decision_id}", headers=bearer(auditor))
    assert answer.status_code == 200, answer.text
    found = answer.json()  # the leaf, with the input and result blobs it names
    return {**found["body"], "input": found["input"], "result": found["result"]}


def entries(services: Services) -> int:
    with services.db.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_leaves")).scalar_one())


def cleared_models(decision: dict[str, Any]) -> set[str]:
    return {a["model"] for a in decision["allowed"]}


GENERAL = {"task": "qa", "quality_tier": "commodity", "regulatory_tier": "standard", "data_classification": "public"}


def test_public_sector_app_without_sector_is_judged_as_public_sector(
        client: TestClient, app_keys: dict[str, str], keys: Any) -> None:
    omitted = decide(client, app_keys["citizen-services"], "citizen-services", GENERAL)
    assert omitted.status_code == 200, omitted.text
    explicit = decide(client, app_keys["citizen-services"], "citizen-services", {**GENERAL, "sector": "public_sector"})
    assert not cleared_models(omitted.json()) & CN_MODELS
    assert cleared_models(omitted.json()) == cleared_models(explicit.json())
    body = entry(client, keys.auditor, omitted.json()["decision_id"])
    assert body["input"]["workload"]["sectors"] == ["public_sector"]
    assert body["input"]["requested"] == {"workload_profile": None, "workload": GENERAL}
    assert body["input"]["app"]["sectors"] == ["public_sector"]


def test_a_sector_outside_the_profile_is_422_naming_the_field(
        client: TestClient, app_keys: dict[str, str], services: Services) -> None:
    before = entries(services)
    answer = decide(client, app_keys["citizen-services"], "citizen-services", {**GENERAL, "sector": "general"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "outside_profile"
    assert error["fields"][0]["field"] == "workload.sector" and "public_sector" in error["fields"][0]["reason"]
    assert entries(services) == before  # refused: no decision, so no entry


def test_several_sectors_take_the_strictest_reading(client: TestClient, app_keys: dict[str, str], keys: Any) -> None:
    workload = {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
                "data_classification": "confidential"}
    both = decide(client, app_keys["claims-summariser"], "claims-summariser", workload)
    assert both.status_code == 200, both.text
    each = [decide(client, app_keys["claims-summariser"], "claims-summariser", {**workload, "sector": s}).json()
            for s in ("financial_services", "insurance")]
    assert cleared_models(both.json()) == cleared_models(each[0]) & cleared_models(each[1])
    body = entry(client, keys.auditor, both.json()["decision_id"])
    assert body["input"]["workload"]["sectors"] == ["financial_services", "insurance"]
    # The audit search finds it under each sector it was judged for, and counts it under each.
    decision_id = both.json()["decision_id"]
    for sector in ("financial_services", "insurance"):
        found = client.get("/v1/audit/decisions", params={"sector": sector, "app_id": "claims-summariser",
                                                          "limit": 1000}, headers=bearer(keys.auditor))
        assert found.status_code == 200, found.text
        assert decision_id in {i["decision_id"] for i in found.json()["items"]}, sector
    stats = client.get("/v1/audit/stats", params={"group_by": "sector", "app_id": "claims-summariser"},
                       headers=bearer(keys.auditor)).json()
    counted = {g["sector"] for g in stats["groups"]}
    assert {"financial_services", "insurance"} <= counted and "financial_services,insurance" not in counted
    other = client.get("/v1/audit/decisions", params={"sector": "healthcare", "app_id": "claims-summariser"},
                       headers=bearer(keys.auditor)).json()
    assert decision_id not in {i["decision_id"] for i in other["items"]}


@pytest.mark.parametrize("member", [["DE"], ["FR", "IT"]])
def test_a_member_state_gets_every_eu_rule(client: TestClient, app_keys: dict[str, str], member: list[str]) -> None:
    key = app_keys["internal-helpdesk"]
    base = {"task": "reasoning", "quality_tier": "frontier", "regulatory_tier": "standard",
            "data_classification": "internal", "sector": "general"}
    eu = decide(client, key, "internal-helpdesk", {**base, "jurisdictions": ["EU"]}).json()
    states = decide(client, key, "internal-helpdesk", {**base, "jurisdictions": member}).json()
    us = decide(client, key, "internal-helpdesk", {**base, "jurisdictions": ["US"]}).json()
    eu_denied = {(d["model"], d["deployment"]) for d in eu["denied"]
                 if "EU_SYSTEMIC_RISK" in {r["code"] for r in d["reasons"]}}
    assert any(model == "glm-5" for model, _ in eu_denied)  # the repro: GLM-5 denied under EU rules
    assert {(d["model"], d["deployment"]) for d in states["denied"]
            if "EU_SYSTEMIC_RISK" in {r["code"] for r in d["reasons"]}} == eu_denied
    assert not any("EU_SYSTEMIC_RISK" in {r["code"] for r in d["reasons"]} for d in us["denied"])
    assert "glm-5" not in cleared_models(states)


def test_jurisdictions_recorded_as_asked_and_as_expanded(client: TestClient, app_keys: dict[str, str], keys: Any) -> None:
    answer = decide(client, app_keys["internal-helpdesk"], "internal-helpdesk", {**GENERAL, "jurisdictions": ["DE"]})
    body = entry(client, keys.auditor, answer.json()["decision_id"])
    assert body["input"]["requested"]["workload"]["jurisdictions"] == ["DE"]
    assert body["input"]["workload"]["jurisdictions"] == ["DE", "EEA", "EU"]
    omitted = decide(client, app_keys["internal-helpdesk"], "internal-helpdesk", GENERAL)
    assert entry(client, keys.auditor, omitted.json()["decision_id"])["input"]["workload"]["jurisdictions"] == \
        ["EEA", "EU", "US"]  # the profile's EU and US


@pytest.mark.parametrize(("codes", "field", "reason"), [
    (["XX"], "workload.jurisdictions.0", "neither an ISO 3166-1 alpha-2"),
    (["US", "ZZ"], "workload.jurisdictions.1", "neither an ISO 3166-1 alpha-2"),
    (["de"], "workload.jurisdictions.0", "upper case"),
    (["EUR"], "workload.jurisdictions.0", "neither an ISO 3166-1 alpha-2"),
    ([], "workload.jurisdictions", "at least 1"),
    (["CN"], "workload.jurisdictions.0", "outside the profile"),
    (["EEA"], "workload.jurisdictions.0", "outside the profile"),  # the helpdesk is registered for EU, not NO/IS/LI
])
def test_bad_jurisdictions_are_4xx_naming_the_field(client: TestClient, app_keys: dict[str, str], codes: list[str],
                                                    field: str, reason: str) -> None:
    answer = decide(client, app_keys["internal-helpdesk"], "internal-helpdesk", {**GENERAL, "jurisdictions": codes})
    assert answer.status_code == 422, answer.text
    fields = {f["field"]: f["reason"] for f in answer.json()["error"]["fields"]}
    assert field in fields and reason in fields[field], fields


def test_uk_is_read_as_gb(client: TestClient, services: Services, keys: Any) -> None:
    key = create_key(services.db, role=Role.app, app_id="social-feed")[0]
    workload = {"task": "classification", "quality_tier": "commodity", "regulatory_tier": "standard",
                "data_classification": "internal"}
    uk = decide(client, key, "social-feed", {**workload, "jurisdictions": ["UK"]})
    assert uk.status_code == 200, uk.text
    gb = decide(client, key, "social-feed", {**workload, "jurisdictions": ["GB"]})
    assert uk.json()["allowed"] == gb.json()["allowed"]
    body = entry(client, keys.auditor, uk.json()["decision_id"])
    assert body["input"]["workload"]["jurisdictions"] == ["GB"]
    assert body["input"]["requested"]["workload"]["jurisdictions"] == ["UK"]


def test_classification_and_tier_below_the_floor_are_raised(
        client: TestClient, app_keys: dict[str, str], keys: Any) -> None:
    low = {"task": "extraction", "quality_tier": "advanced", "regulatory_tier": "minimal", "data_classification": "public"}
    answer = decide(client, app_keys["eu-patient-records"], "eu-patient-records", low)
    assert answer.status_code == 200, answer.text
    body = entry(client, keys.auditor, answer.json()["decision_id"])
    assert body["input"]["workload"]["data_classification"] == "restricted"
    assert body["input"]["workload"]["regulatory_tier"] == "regulated"
    assert body["input"]["requested"]["workload"]["data_classification"] == "public"
    denied = {r["code"] for d in answer.json()["denied"] for r in d["reasons"]}
    assert "DATA_RESIDENCY" in denied and "SAFETY_POST_TRAINING" in denied


def test_a_task_outside_the_profile_is_422(client: TestClient, app_keys: dict[str, str]) -> None:
    answer = decide(client, app_keys["eu-patient-records"], "eu-patient-records",
                    {"task": "code_generation", "quality_tier": "commodity", "regulatory_tier": "regulated",
                     "data_classification": "restricted"})
    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["field"] == "workload.task"


def test_a_named_workload_profile_decides_like_its_fields(client: TestClient, app_keys: dict[str, str],
                                                          keys: Any) -> None:
    named = decide(client, app_keys["claims-summariser"], "claims-summariser", workload_profile="claim-summary")
    assert named.status_code == 200, named.text
    fields = decide(client, app_keys["claims-summariser"], "claims-summariser",
                    {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
                     "data_classification": "confidential", "min_context_tokens": 32000})
    assert named.json()["allowed"] == fields.json()["allowed"]
    assert entry(client, keys.auditor, named.json()["decision_id"])["input"]["requested"] == \
        {"workload_profile": "claim-summary", "workload": None}


@pytest.mark.parametrize(("extra", "field"), [
    ({"workload_profile": "no-such-profile"}, "workload_profile"),
    ({"workload_profile": "claim-summary", "workload": GENERAL}, "workload_profile"),
    ({}, "workload"),
])
def test_workload_profile_misuse_is_422(client: TestClient, app_keys: dict[str, str], extra: dict[str, Any],
                                        field: str) -> None:
    answer = client.post("/v1/decisions", json={"app_id": "claims-summariser", **extra},
                         headers=bearer(app_keys["claims-summariser"]))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["fields"][0]["field"] == field


@pytest.mark.parametrize(("name", "value"), [
    ("commercial", "no"), ("commercial", "off"), ("commercial", "0"), ("commercial", 0), ("commercial", "false"),
    ("monthly_active_users", True), ("monthly_active_users", "5"), ("monthly_active_users", 5.0),
    ("min_context_tokens", "32000"), ("max_price_per_mtok", "5.0"), ("max_price_per_mtok", True),
    ("jurisdictions", "EU"), ("deployment_modes", "self_hosted"), ("sector", 1), ("task", ["qa"]),
])
def test_no_type_coercion(client: TestClient, keys: Any, name: str, value: Any) -> None:
    body = {"app_id": "claims-summariser",
            "workload": {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
                         "data_classification": "confidential", name: value}}
    answer = client.post("/v1/decisions", json=body, headers=bearer(keys.own_app))
    assert answer.status_code == 422, answer.text
    assert f"workload.{name}" in {f["field"] for f in answer.json()["error"]["fields"]}


def test_an_integer_price_is_a_number(client: TestClient, keys: Any) -> None:
    body = {"app_id": "claims-summariser",
            "workload": {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
                         "data_classification": "confidential", "max_price_per_mtok": 5}}
    assert client.post("/v1/decisions", json=body, headers=bearer(keys.own_app)).status_code == 200


@pytest.mark.parametrize(("raw", "field"), [
    (b'{"app_id": "claims-summariser", "workload": {"task": "summarization", "quality_tier": "commodity", '
     b'"regulatory_tier": "regulated", "data_classification": "restricted", "data_classification": "public"}}',
     "workload.data_classification"),
    (b'{"app_id": "claims-summariser", "app_id": "claims-summariser", "workload": {"task": "summarization", '
     b'"quality_tier": "commodity", "regulatory_tier": "regulated", "data_classification": "confidential"}}',
     "app_id"),
    (b'{"app_id": "claims-summariser", "workload": {"task": "summarization", "quality_tier": "commodity", '
     b'"regulatory_tier": "regulated", "data_classification": "confidential"}, '
     b'"context": {"request_id": "a", "request_id": "b"}}', "context.request_id"),
    (b'{"app_id": "claims-summariser", "workload": {"task": "summarization", "quality_tier": "commodity", '
     b'"regulatory_tier": "regulated", "data_classification": "confidential", "sector": "insurance", '
     b'"sector": "financial_services"}}', "workload.sector"),
])
def test_a_duplicate_key_is_400_and_nothing_is_recorded(client: TestClient, keys: Any, services: Services,
                                                        raw: bytes, field: str) -> None:
    before = entries(services)
    for path in ("/v1/decisions", "/v1/policy/simulate"):
        key = keys.own_app if path == "/v1/decisions" else keys.admin
        answer = client.post(path, content=raw, headers={**bearer(key), "Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "duplicate_key" and "appears more than once" in error["message"]
        assert error["fields"] == [{"field": field, "reason": "duplicate key"}]
    assert entries(services) == before
