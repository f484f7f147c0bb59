"""Gateways over HTTP: gateway keys and the identity mapping, the wider context and its audit
filters, /v1/models, served-route reports, and the gateways' native contracts (the check,
LiteLLM's generic guardrail API, Portkey's webhook) — each refusal tried by an attacker holding a
real gateway key."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.apikeys import Role, create_key
from api.services import Services
from tests.api.conftest import Keys, bearer

HELPDESK = {"team": "it-service-desk"}  # maps to internal-helpdesk on both gateways (gateways.yaml)


@pytest.fixture(scope="module")
def gw(services: Services) -> dict[str, str]:
    """Gateway keys: bound to litellm-main for two apps, unbound, and one whose list lacks the helpdesk."""
    db = services.db
    return {
        "litellm": create_key(db, role=Role.gateway, app_id=None, apps=["internal-helpdesk", "claims-summariser"],
                              gateway="litellm-main")[0],
        "unbound": create_key(db, role=Role.gateway, app_id=None, apps=["internal-helpdesk"])[0],
        "claims_only": create_key(db, role=Role.gateway, app_id=None, apps=["claims-summariser"],
                                  gateway="litellm-main")[0],
        "portkey": create_key(db, role=Role.gateway, app_id=None, apps=["internal-helpdesk"],
                              gateway="portkey-main")[0],
    }


def decide(client: TestClient, key: str, body: dict[str, Any]) -> Any:
    return client.post("/v1/decisions", json=body, headers=bearer(key))


def entry(client: TestClient, keys: Keys, decision_id: str) -> dict[str, Any]:
    found = client.get(f"/v1/decisions/{decision_id}", headers=bearer(keys.auditor))
    assert found.status_code == 200, found.text
    answer = found.json()  # the leaf, with the input and result blobs it names
    return {**answer["body"], "input": answer["input"], "result": answer["result"]}


# -- gateway keys and the identity mapping ------------------------------------------------------


def test_a_gateway_key_decides_for_the_app_its_caller_maps_to(client: TestClient, keys: Keys,
                                                              gw: dict[str, str]) -> None:
    context = {"request_id": "r-1", "trace_id": "t-gw-1",
               "gateway": {"team": "it-service-desk", "requested_model": "fast", "call_id": "call-1"}}
    made = decide(client, gw["litellm"], {"app_id": "internal-helpdesk", "workload_profile": "ticket-summary",
                                          "context": context})
    assert made.status_code == 200, made.text
    body = entry(client, keys, made.json()["decision_id"])
    # The key's gateway is recorded even though the call did not name it.
    assert body["context"] == {"request_id": "r-1", "trace_id": "t-gw-1", "gateway": {
        "name": "litellm-main", "team": "it-service-desk", "requested_model": "fast", "call_id": "call-1"}}
    assert body["input"]["caller"]["role"] == "gateway"


@pytest.mark.parametrize(("key", "body", "says"), [
    # The mapping says helpdesk; the body claims another app of the key's list.
    ("litellm", {"app_id": "claims-summariser", "context": {"gateway": HELPDESK}}, "map to app 'internal-helpdesk'"),
    # The mapping says helpdesk, which is not among this key's apps.
    ("claims_only", {"app_id": "internal-helpdesk", "context": {"gateway": HELPDESK}}, "not among the apps"),
    # No identity: the body alone never chooses the app.
    ("litellm", {"app_id": "internal-helpdesk"}, "maps to no app"),
    ("litellm", {"app_id": "internal-helpdesk", "context": {"gateway": {"team": "no-such-team"}}}, "maps to no app"),
    # Key alias and team disagree.
    ("litellm", {"app_id": "internal-helpdesk", "context": {"gateway": {
        "team": "it-service-desk", "key_alias": "claims-batch"}}}, "but team"),
    # A key bound to one gateway cannot speak for another.
    ("litellm", {"app_id": "internal-helpdesk", "context": {"gateway": {**HELPDESK, "name": "portkey-main"}}},
     "belongs to gateway"),
    # An unbound key must name a gateway of gateways.yaml.
    ("unbound", {"app_id": "internal-helpdesk", "context": {"gateway": HELPDESK}}, "must name its gateway"),
    ("unbound", {"app_id": "internal-helpdesk", "context": {"gateway": {**HELPDESK, "name": "nowhere"}}},
     "not in gateways.yaml"),
])
def test_a_gateway_key_cannot_choose_the_app(client: TestClient, gw: dict[str, str], key: str,
                                              body: dict[str, Any], says: str) -> None:
    body = {**body, "workload_profile": "ticket-summary"}
    refused = decide(client, gw[key], body)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "forbidden" and says in refused.json()["error"]["message"]
    assert "decision_id" not in refused.text


def test_an_unbound_key_naming_its_gateway_decides(client: TestClient, gw: dict[str, str]) -> None:
    made = decide(client, gw["unbound"], {"app_id": "internal-helpdesk", "workload_profile": "ticket-summary",
                                          "context": {"gateway": {**HELPDESK, "name": "portkey-main"}}})
    assert made.status_code == 200, made.text


def test_an_unknown_profile_is_422(client: TestClient, gw: dict[str, str], keys: Keys) -> None:
    for key, extra in ((gw["litellm"], {"context": {"gateway": HELPDESK}}), (keys.other_app, {})):
        refused = decide(client, key, {"app_id": "internal-helpdesk", "workload_profile": "no-such-profile", **extra})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["fields"][0]["field"] == "workload_profile"


@pytest.mark.parametrize("context", [
    {"gateway": {"team": "it-service-desk", "colour": "blue"}},  # unknown member
    {"trace_id": 42},  # not a string
    {"trace_id": "a\nb"},  # a control character
    {"gateway": {"call_id": "x" * 201}},  # too long
    {"gateway": "litellm-main"},
])
def test_the_context_is_strict(client: TestClient, keys: Keys, context: dict[str, Any]) -> None:
    refused = decide(client, keys.other_app, {"app_id": "internal-helpdesk", "workload_profile": "ticket-summary",
                                              "context": context})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["fields"][0]["field"].startswith("context")


# -- the wider context in the audit queries ---------------------------------------------------


def test_every_context_member_is_a_filter(client: TestClient, keys: Keys, gw: dict[str, str]) -> None:
    tag = uuid.uuid4().hex[:8]
    gateway = {"team": "it-service-desk", "requested_model": f"m-{tag}", "call_id": f"c-{tag}", "key_alias": "helpdesk-slackbot"}
    made = decide(client, gw["litellm"], {"app_id": "internal-helpdesk", "workload_profile": "ticket-summary",
                                          "context": {"request_id": f"r-{tag}", "trace_id": f"t-{tag}",
                                                      "gateway": gateway}})
    decision_id = made.json()["decision_id"]
    other = decide(client, keys.other_app, {"app_id": "internal-helpdesk", "workload_profile": "ticket-summary",
                                            "context": {"request_id": f"r-{tag}-other"}})
    assert other.status_code == 200
    for name, value in (("request_id", f"r-{tag}"), ("trace_id", f"t-{tag}"), ("requested_model", f"m-{tag}"),
                        ("call_id", f"c-{tag}"), ("key_alias", "helpdesk-slackbot")):
        page = client.get("/v1/audit/decisions", params={name: value}, headers=bearer(keys.auditor)).json()
        assert [i["decision_id"] for i in page["items"]] == [decision_id], name
    both = client.get("/v1/audit/decisions", params={"trace_id": f"t-{tag}", "gateway": "litellm-main",
                                                     "team": "it-service-desk", "outcome": "allow"},
                      headers=bearer(keys.auditor)).json()
    assert [i["decision_id"] for i in both["items"]] == [decision_id]
    nothing = client.get("/v1/audit/decisions", params={"trace_id": f"t-{tag}", "gateway": "portkey-main"},
                         headers=bearer(keys.auditor)).json()
    assert nothing["items"] == []
    counted = client.get("/v1/audit/stats", params={"call_id": f"c-{tag}"}, headers=bearer(keys.auditor)).json()
    assert counted["total"] == 1
    bad = client.get("/v1/audit/decisions", params={"trace_id": "a\tb"}, headers=bearer(keys.auditor))
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "trace_id"


# -- GET /v1/models ---------------------------------------------------------------------------


def test_models_lists_what_the_default_profile_clears_and_records_it(client: TestClient, keys: Keys,
                                                                       services: Services) -> None:
    listed = client.get("/v1/models", headers=bearer(keys.own_app))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["object"] == "list" and body["workload_profile"] == "claim-summary"
    recorded = entry(client, keys, body["decision_id"])  # the listing is a recorded decision
    assert recorded["input"]["requested"] == {"workload_profile": "claim-summary", "workload": None}
    cleared = {r["model"] for r in recorded["result"]["allowed"]}
    assert {m["id"] for m in body["data"]} == cleared and cleared
    ranks = [m["clearance"]["rank"] for m in body["data"]]
    assert ranks == sorted(ranks)  # best first
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int) and model["owned_by"]
    # Every denied model stays out of the list.
    denied_only = {r["model"] for r in recorded["result"]["denied"]} - cleared
    assert not denied_only & {m["id"] for m in body["data"]}


def test_models_of_another_profile_and_refusals(client: TestClient, keys: Keys, gw: dict[str, str]) -> None:
    assert client.get("/v1/models", params={"workload_profile": "nope"},
                      headers=bearer(keys.own_app)).status_code == 422
    assert client.get("/v1/models", headers=bearer(keys.auditor)).status_code == 403
    assert client.get("/v1/models").status_code == 401
    through = client.get("/v1/models", params={"team": "it-service-desk"}, headers=bearer(gw["litellm"]))
    assert through.status_code == 200, through.text
    assert through.json()["app_id"] == "internal-helpdesk"
    gemma = next(m for m in through.json()["data"] if m["id"] == "gemma-4-31b")
    assert "hosted_vllm/gemma-4-31b" in gemma["clearance"]["gateway_names"]
    assert client.get("/v1/models", params={"team": "it-service-desk"},
                      headers=bearer(gw["claims_only"])).status_code == 403


def test_the_openai_sdk_reads_the_list(client: TestClient, keys: Keys) -> None:
    openai = pytest.importorskip("openai")
    sdk = openai.OpenAI(base_url=f"{client.base_url}/v1", api_key=keys.own_app, http_client=client)
    ids = [m.id for m in sdk.models.list()]
    assert ids and "gemini-3.1-pro" in ids and "deepseek-v4" not in ids


# -- served-route reports ---------------------------------------------------------------------


def _metric(client: TestClient, status: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'clearance_served_routes_total{{status="{status}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_served_reports_are_recorded_and_an_uncleared_route_is_flagged(client: TestClient, keys: Keys,
                                                                          gw: dict[str, str]) -> None:
    made = decide(client, gw["litellm"], {"app_id": "internal-helpdesk", "workload_profile": "ticket-summary",
                                          "context": {"gateway": HELPDESK}}).json()
    before = _metric(client, "uncleared")
    ok = client.post(f"/v1/decisions/{made['decision_id']}/served", headers=bearer(gw["litellm"]),
                     json={"gateway_route": "hosted_vllm/gemma-4-31b", "context": {"gateway": {"call_id": "s-1"}}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["flag"] is None and ok.json()["served"]["cleared"] is True
    assert ok.json()["served"]["model"] == "gemma-4-31b" and ok.json()["served"]["rank"] >= 1
    bad = client.post(f"/v1/decisions/{made['decision_id']}/served", headers=bearer(gw["litellm"]),
                      json={"model": "deepseek-v4", "deployment": "deepseek-api"})
    assert bad.status_code == 200, bad.text
    assert bad.json()["flag"] == "route_not_cleared"
    assert "EU_SYSTEMIC_RISK" in {r["code"] for r in bad.json()["served"]["reasons"]}
    assert _metric(client, "uncleared") == before + 1
    # Its own entries, found by the decision they report on and by the flag.
    reports = client.get("/v1/audit/decisions", params={"served_for": made["decision_id"], "order": "asc"},
                         headers=bearer(keys.auditor)).json()["items"]
    assert [r["kind"] for r in reports] == ["served", "served"]
    assert all(r["app_id"] == "internal-helpdesk" and r["decision_id"] is None for r in reports)
    flagged = client.get("/v1/audit/decisions", params={"served_for": made["decision_id"], "served": "uncleared"},
                         headers=bearer(keys.auditor)).json()["items"]
    assert [r["seq"] for r in flagged] == [bad.json()["audit"]["seq"]]
    # The decision itself is still the one entry under its id, and the trail verifies.
    assert client.get(f"/v1/decisions/{made['decision_id']}", headers=bearer(keys.auditor)).json()[
        "duplicate_decision_id"] is False
    assert client.get("/v1/audit/verify", headers=bearer(keys.auditor)).json()["valid"] is True


def test_served_report_refusals(client: TestClient, keys: Keys, gw: dict[str, str]) -> None:
    helpdesk = decide(client, keys.other_app, {"app_id": "internal-helpdesk",
                                               "workload_profile": "ticket-summary"}).json()["decision_id"]
    route = {"model": "gemma-4-31b", "deployment": "self-hosted"}
    unknown = client.post(f"/v1/decisions/{uuid.uuid4()}/served", headers=bearer(gw["litellm"]), json=route)
    assert unknown.status_code == 404
    assert client.post("/v1/decisions/not-a-uuid/served", headers=bearer(gw["litellm"]), json=route).status_code == 404
    # A decision of an app outside the gateway key's list, or of another app for an app key.
    assert client.post(f"/v1/decisions/{helpdesk}/served", headers=bearer(gw["claims_only"]),
                       json=route).status_code == 403
    assert client.post(f"/v1/decisions/{helpdesk}/served", headers=bearer(keys.own_app),
                       json=route).status_code == 403
    assert client.post(f"/v1/decisions/{helpdesk}/served", headers=bearer(keys.auditor),
                       json=route).status_code == 403
    # The app itself may report.
    assert client.post(f"/v1/decisions/{helpdesk}/served", headers=bearer(keys.other_app),
                       json=route).status_code == 200
    for body in ({}, {"model": "gemma-4-31b"}, {**route, "gateway_route": "hosted_vllm/gemma-4-31b"},
                 {**route, "colour": "blue"}):
        assert client.post(f"/v1/decisions/{helpdesk}/served", headers=bearer(keys.other_app),
                           json=body).status_code == 422, body
    # A route name the gateway does not map is no route: recorded, and flagged.
    odd = client.post(f"/v1/decisions/{helpdesk}/served", headers=bearer(gw["litellm"]),
                      json={"gateway_route": "openai/whatever"})
    assert odd.status_code == 200 and odd.json()["flag"] == "route_not_cleared"
    assert odd.json()["served"]["reasons"][0]["code"] == "ROUTE_UNKNOWN"


# -- the gateways' check --------------------------------------------------------------------------


def check(client: TestClient, key: str, body: dict[str, Any], gateway: str = "litellm-main") -> Any:
    return client.post(f"/v1/gateways/{gateway}/check", json=body, headers=bearer(key))


def test_the_check_judges_the_deployment_and_proposes_a_substitute(client: TestClient, keys: Keys,
                                                                      gw: dict[str, str]) -> None:
    cleared = check(client, gw["litellm"], {**HELPDESK, "route": "hosted_vllm/gemma-4-31b"}).json()
    assert cleared["allowed"] is True and cleared["route"]["model"] == "gemma-4-31b"
    assert cleared["app_id"] == "internal-helpdesk" and cleared["workload_profile"] == "ticket-summary"
    denied = check(client, gw["litellm"], {
        **HELPDESK, "route": "deepseek/deepseek-v4", "context": {"gateway": {"requested_model": "reasoning"}},
        "candidates": {"fast": None, "safe": None, "reasoning": None}}).json()
    assert denied["allowed"] is False
    assert {r["code"] for r in denied["route"]["reasons"]} >= {"EU_SYSTEMIC_RISK", "FOREIGN_HOSTED_API"}
    # safe (gemma self-hosted, rank 3) beats fast (maverick self-hosted, rank 4).
    assert denied["substitute"]["name"] == "safe"
    recorded = entry(client, keys, denied["decision_id"])
    assert recorded["context"]["gateway"]["requested_model"] == "reasoning"
    unknown = check(client, gw["litellm"], {**HELPDESK, "route": "openai/not-mapped"}).json()
    assert unknown["allowed"] is False and unknown["route"]["reasons"][0]["code"] == "ROUTE_UNKNOWN"
    # An alias is cleared only when every route behind it is.
    own_list = check(client, gw["litellm"], {**HELPDESK, "route": "mixed",
                                              "alias_routes": ["hosted_vllm/gemma-4-31b", "deepseek/deepseek-v4"]})
    assert own_list.json()["allowed"] is False


def test_check_refusals(client: TestClient, keys: Keys, gw: dict[str, str]) -> None:
    assert check(client, keys.other_app, {**HELPDESK}).status_code == 403  # app keys use /v1/decisions
    assert check(client, gw["claims_only"], {**HELPDESK}).status_code == 403
    assert check(client, gw["litellm"], {**HELPDESK}, gateway="portkey-main").status_code == 403
    assert check(client, gw["litellm"], {**HELPDESK, "workload_profile": "nope"}).status_code == 422
    assert check(client, gw["litellm"], {**HELPDESK, "app_id": "internal-helpdesk"}).status_code == 422


# -- LiteLLM's generic guardrail API ------------------------------------------------------------

GENERIC = "/v1/gateways/litellm-main/litellm/beta/litellm_basic_guardrail_api"


def generic(client: TestClient, key: str | None, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(GENERIC, json=body, headers={"x-api-key": key} if key else {})
    assert answer.status_code == 200, answer.text
    assert answer.json()["action"] in ("NONE", "BLOCKED")  # never an answer without it
    return answer.json()  # type: ignore[no-any-return]


def test_the_generic_guardrail_blocks_an_alias_that_is_not_cleared(client: TestClient, keys: Keys,
                                                                    gw: dict[str, str]) -> None:
    request = {"input_type": "request", "litellm_call_id": "lc-1", "litellm_trace_id": "lt-1", "texts": ["hi"],
               "request_data": {"user_api_key_team_alias": "it-service-desk"}, "litellm_version": "1.106.12"}
    assert generic(client, gw["litellm"], {**request, "model": "safe"})["action"] == "NONE"
    blocked = generic(client, gw["litellm"], {**request, "model": "reasoning"})
    assert blocked["action"] == "BLOCKED" and "EU_SYSTEMIC_RISK" in blocked["blocked_reason"]
    recorded = entry(client, keys, blocked["decision_id"])
    assert recorded["context"]["gateway"] == {"name": "litellm-main", "team": "it-service-desk",
                                              "requested_model": "reasoning", "call_id": "lc-1"}
    assert generic(client, gw["litellm"], {**request, "model": "not-an-alias"})["action"] == "BLOCKED"
    assert generic(client, gw["litellm"], {**request, "input_type": "response", "model": "reasoning"})[
        "action"] == "NONE"


@pytest.mark.parametrize(("key", "body"), [
    (None, {"model": "safe", "request_data": {"user_api_key_team_alias": "it-service-desk"}}),
    ("clr_0123456789abcdef_" + "A" * 43, {"model": "safe", "request_data": {"user_api_key_team_alias": "it-service-desk"}}),
    ("app", {"model": "safe", "request_data": {"user_api_key_team_alias": "it-service-desk"}}),
    ("claims_only", {"model": "safe", "request_data": {"user_api_key_team_alias": "it-service-desk"}}),
    ("litellm", {"model": "safe", "request_data": {"user_api_key_team_alias": "nobody"}}),
    ("litellm", {"model": "safe", "request_data": {"user_api_key_team_alias": "it-service-desk"},
                 "additional_provider_specific_params": {"workload_profile": "nope"}}),
    ("litellm", {"request_data": {"user_api_key_team_alias": "it-service-desk"}}),
    ("litellm", {"model": "safe", "request_data": "not an object"}),
])
def test_every_refusal_of_the_generic_guardrail_is_an_answer_with_action(
        client: TestClient, keys: Keys, gw: dict[str, str], key: str | None, body: dict[str, Any]) -> None:
    secret = keys.other_app if key == "app" else gw.get(key or "", key)
    answer = generic(client, secret, body)
    assert answer["action"] == "BLOCKED" and answer["blocked_reason"].startswith("Clearance:")


# -- Portkey's webhook ----------------------------------------------------------------------------

WEBHOOK = "/v1/gateways/portkey-main/portkey/webhook"


def webhook(client: TestClient, key: str | None, model: str, *, provider: str = "openai",
            metadata: dict[str, Any] | None = None, path: str = WEBHOOK) -> dict[str, Any]:
    body = {"request": {"json": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
                        "text": "hi", "isStreamingRequest": False, "isTransformed": False},
            "response": {"json": {}, "text": "", "statusCode": None}, "provider": provider,
            "requestType": "chatComplete", "eventType": "beforeRequestHook",
            "metadata": metadata if metadata is not None else {"team": "it-service-desk"}}
    answer = client.post(path, json=body, headers=bearer(key) if key else {})
    assert answer.status_code == 200, answer.text
    assert isinstance(answer.json()["verdict"], bool)
    return answer.json()  # type: ignore[no-any-return]


def test_the_webhook_clears_substitutes_and_refuses(client: TestClient, keys: Keys, gw: dict[str, str]) -> None:
    cleared = webhook(client, gw["portkey"], "gemma-4-31b")
    assert cleared["verdict"] is True and "transformedData" not in cleared
    swapped = webhook(client, gw["portkey"], "deepseek-v4")
    assert swapped["verdict"] is True
    # The best-ranked cleared model of the same provider (bonsai-8b, rank 1 for the helpdesk).
    assert swapped["transformedData"]["request"]["json"]["model"] == "bonsai-8b"
    assert swapped["transformedData"]["request"]["json"]["messages"] == [{"role": "user", "content": "hi"}]
    plain = webhook(client, gw["portkey"], "deepseek-v4", path=WEBHOOK + "?substitute=false")
    assert plain["verdict"] is False and "EU_SYSTEMIC_RISK" in plain["reason"]
    assert "transformedData" not in plain
    other_provider = webhook(client, gw["portkey"], "deepseek-v4", provider="deepseek")
    assert other_provider["verdict"] is False  # no cleared route of that provider to swap to
    recorded = entry(client, keys, plain["decision_id"])
    assert recorded["context"]["gateway"]["requested_model"] == "deepseek-v4"
    for key, metadata in ((None, None), ("clr_0123456789abcdef_" + "A" * 43, None), (gw["litellm"], None),
                          (gw["portkey"], {"team": "nobody"}), (gw["portkey"], {})):
        refused = webhook(client, key, "gemma-4-31b", metadata=metadata)
        assert refused["verdict"] is False and refused["reason"].startswith("Clearance:")
