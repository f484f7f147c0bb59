"""ClearanceTransport driven through the real OpenAI SDK, against a mock OpenAI backend and a stub
of Clearance on loopback: cleared models pass (streams included), anything else never reaches
the backend."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import openai
import pytest
from tlog_factory import decision_json

from clearance_client import AsyncClearanceTransport, AsyncClient, ClearanceTransport, Client, Decision
from clearance_client._gate import DecisionCache

APP = "claims-summariser"
WORKLOAD = {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
            "data_classification": "confidential", "commercial": True}
ROUTES = {"llama": ("llama-4-maverick", "together-api"), "deepseek": ("deepseek-v4", "deepseek-api")}


def make_sdk(clearance_url, backend, *, max_retries=0, clearance_client=None, **kw) -> openai.OpenAI:
    kw.setdefault("workload", WORKLOAD)
    kw.setdefault("deployment", "openai-api")
    kw.setdefault("model_map", ROUTES)
    transport = ClearanceTransport(clearance_client or Client(clearance_url, "clr_app_key"), app_id=APP, **kw)
    return openai.OpenAI(base_url=backend.url + "/v1", api_key="sk-test", max_retries=max_retries,
                         http_client=httpx.Client(transport=transport))


def chat(sdk, model, **kw):
    return sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], **kw)


def test_a_cleared_model_is_forwarded(clearance, backend):
    sdk = make_sdk(clearance.url, backend)
    raw = sdk.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello from gpt-5-mini"
    assert backend.models_served == ["gpt-5-mini"]
    decided = clearance.decisions[0]["body"]
    assert decided == {"app_id": APP, "workload": WORKLOAD} and clearance.decisions[0]["authorization"] == "Bearer clr_app_key"
    assert raw.headers["x-clearance-decision-id"]  # the decision that let the call through


def test_an_uncleared_model_is_refused_with_its_reason_codes(clearance, backend):
    sdk = make_sdk(clearance.url, backend)
    with pytest.raises(openai.PermissionDeniedError) as info:
        chat(sdk, "llama")
    err = info.value
    assert err.status_code == 403 and err.code == "model_not_cleared"
    assert "LICENCE_MAU_CAP" in err.message and "DATA_RESIDENCY" in err.message
    body = err.body
    assert body["reasons"] == [{"model": "llama", "catalog_model": "llama-4-maverick", "deployment": "together-api",
                                "codes": ["LICENCE_MAU_CAP", "DATA_RESIDENCY"],
                                "messages": ["800000000 MAU exceeds the 700000000 cap",
                                             "restricted data leaves the allowed regions"]}]
    assert body["decision_id"]
    assert backend.requests == []


def test_a_model_the_decision_does_not_know_is_refused(clearance, backend):
    sdk = make_sdk(clearance.url, backend)
    with pytest.raises(openai.PermissionDeniedError) as info:
        chat(sdk, "gpt-4o")
    assert info.value.body["reasons"][0]["codes"] == ["ROUTE_NOT_IN_DECISION"]
    assert backend.requests == []


def test_streams_of_a_cleared_model_flow(clearance, backend):
    sdk = make_sdk(clearance.url, backend)
    stream = chat(sdk, "gpt-5-mini", stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "hello from gpt-5-mini"
    assert backend.requests[0]["body"]["stream"] is True


def test_streams_of_an_uncleared_model_are_refused_before_any_byte(clearance, backend):
    sdk = make_sdk(clearance.url, backend)
    with pytest.raises(openai.PermissionDeniedError):
        chat(sdk, "deepseek", stream=True)
    with pytest.raises(openai.PermissionDeniedError):
        sdk.responses.create(model="deepseek", input="hi", stream=True)
    assert backend.requests == []


def test_responses_api(clearance, backend):
    sdk = make_sdk(clearance.url, backend)
    assert sdk.responses.create(model="gpt-5-mini", input="hi").output_text == "hi from gpt-5-mini"
    events = [e.type for e in sdk.responses.create(model="gpt-5-mini", input="hi", stream=True)]
    assert events == ["response.created", "response.output_text.delta", "response.completed"]
    with pytest.raises(openai.PermissionDeniedError, match="FOREIGN_HOSTED_API"):
        sdk.responses.create(model="deepseek", input="hi")
    assert backend.models_served == ["gpt-5-mini", "gpt-5-mini"]


def test_embeddings_completions_and_audio(clearance, backend):
    sdk = make_sdk(clearance.url, backend)
    assert sdk.embeddings.create(model="gpt-5-mini", input="x").data[0].embedding == [0.25, -0.5]
    with pytest.raises(openai.PermissionDeniedError):
        sdk.embeddings.create(model="llama", input="x")
    with pytest.raises(openai.PermissionDeniedError):
        sdk.completions.create(model="llama", prompt="x")
    # multipart/form-data: the model is a form field
    assert sdk.audio.transcriptions.create(model="gpt-5-mini", file=("a.wav", b"RIFF....")).text == \
        "transcribed by gpt-5-mini"
    with pytest.raises(openai.PermissionDeniedError):
        sdk.audio.transcriptions.create(model="deepseek", file=("a.wav", b"RIFF...."))
    assert backend.models_served == ["gpt-5-mini", "gpt-5-mini"]


def test_clearance_unreachable_refuses(dead_url, backend):
    sdk = make_sdk(dead_url, backend)
    with pytest.raises(openai.InternalServerError) as info:
        chat(sdk, "gpt-5-mini")
    assert info.value.status_code == 503 and info.value.code == "clearance_unavailable"
    with pytest.raises(openai.InternalServerError):
        chat(sdk, "gpt-5-mini", stream=True)
    assert backend.requests == []


def test_clearance_down_mid_way_refuses_once_the_decision_expires(clearance, backend):
    sdk = make_sdk(clearance.url, backend, ttl_seconds=0)
    chat(sdk, "gpt-5-mini")
    clearance.stop()
    with pytest.raises(openai.InternalServerError):
        chat(sdk, "gpt-5-mini")
    assert len(backend.requests) == 1


def test_the_sdk_may_retry_an_outage_but_never_forwards(clearance, backend):
    clearance.status, clearance.payload = 503, {"error": {"code": "audit_unavailable", "message": "x", "fields": []}}
    sdk = make_sdk(clearance.url, backend, max_retries=1)
    with pytest.raises(openai.InternalServerError):
        chat(sdk, "gpt-5-mini")
    assert len(clearance.decisions) == 2 and backend.requests == []


@pytest.mark.parametrize(("status", "payload", "kind", "code"), [
    (500, {"error": {"code": "internal", "message": "boom", "fields": []}}, openai.InternalServerError,
     "clearance_unavailable"),
    (403, {"error": {"code": "forbidden", "message": "not your app", "fields": []}}, openai.PermissionDeniedError,
     "clearance_forbidden"),
    (401, {"error": {"code": "unauthorized", "message": "who?", "fields": []}}, openai.PermissionDeniedError,
     "clearance_forbidden"),
    (422, {"error": {"code": "invalid_request", "message": "bad", "fields": [{"field": "workload.sector", "reason": "x"}]}},
     openai.BadRequestError, "clearance_invalid_workload"),
    (200, b'{"decision_id": "d", "outcome": "allow"}', openai.APIStatusError, "clearance_bad_answer"),
    (200, b"<html>proxy login</html>", openai.APIStatusError, "clearance_bad_answer"),
])
def test_every_clearance_failure_is_a_refusal(clearance, backend, status, payload, kind, code):
    clearance.status, clearance.payload = status, payload
    sdk = make_sdk(clearance.url, backend)
    with pytest.raises(kind) as info:
        chat(sdk, "gpt-5-mini")
    assert info.value.code == code
    assert backend.requests == []


def test_clearance_timeout_refuses(clearance, backend):
    clearance.delay = 1.0
    sdk = make_sdk(clearance.url, backend, clearance_client=Client(clearance.url, timeout=0.2))
    with pytest.raises(openai.InternalServerError, match="timed out"):
        chat(sdk, "gpt-5-mini")
    assert backend.requests == []


def test_a_receipt_that_does_not_verify_refuses(clearance, backend):
    def tamper(decision):
        decision["denied"] = [d for d in decision["denied"] if d["model"] != "llama-4-maverick"]
    clearance.tamper = tamper
    verifying = Client(clearance.url, trusted_keys=[clearance.log.signer.vkey])
    sdk = make_sdk(clearance.url, backend, clearance_client=verifying)
    with pytest.raises(openai.APIStatusError) as info:
        chat(sdk, "gpt-5-mini")
    assert info.value.status_code == 502 and info.value.code == "clearance_receipt_invalid"
    assert "entry.result_sha256" in info.value.message and backend.requests == []


def test_with_a_verified_receipt_the_call_goes_through(clearance, backend):
    verifying = Client(clearance.url, trusted_keys=[clearance.log.signer.vkey])
    assert chat(make_sdk(clearance.url, backend, clearance_client=verifying), "gpt-5-mini").choices


def test_a_deny_decision_refuses_everything(clearance, backend):
    clearance.decision_for = lambda body: decision_json(allowed=[])
    sdk = make_sdk(clearance.url, backend)
    for model in ("gpt-5-mini", "llama", "gemma-4-31b"):
        with pytest.raises(openai.PermissionDeniedError):
            chat(sdk, model)
    assert backend.requests == []


def test_one_decision_per_workload_within_the_ttl(clearance, backend):
    sdk = make_sdk(clearance.url, backend, ttl_seconds=60)
    for _ in range(3):
        chat(sdk, "gpt-5-mini")
    with pytest.raises(openai.PermissionDeniedError):
        chat(sdk, "llama")
    assert len(clearance.decisions) == 1 and len(backend.requests) == 3
    sdk0 = make_sdk(clearance.url, backend, ttl_seconds=0)
    chat(sdk0, "gpt-5-mini")
    chat(sdk0, "gpt-5-mini")
    assert len(clearance.decisions) == 3


def test_the_decision_cache_expires():
    now = [100.0]
    cache = DecisionCache(30, clock=lambda: now[0])
    key = cache.key(WORKLOAD, None)
    decision = Decision.from_json(decision_json())
    cache.put(key, decision)
    assert cache.get(key) is decision and cache.get(cache.key(WORKLOAD, "other")) is None
    now[0] = 129.9
    assert cache.get(key) is decision
    now[0] = 130.0
    assert cache.get(key) is None
    no_cache = DecisionCache(0, clock=lambda: now[0])
    no_cache.put(key, decision)
    assert no_cache.get(key) is None


def test_concurrent_first_requests_share_one_decision(clearance, backend):
    clearance.delay = 0.2
    sdk = make_sdk(clearance.url, backend, ttl_seconds=60)
    threads = [threading.Thread(target=chat, args=(sdk, "gpt-5-mini")) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(clearance.decisions) == 1 and len(backend.requests) == 6


def test_model_map_aliases(clearance, backend):
    routes = {"fast": ("gemma-4-31b", "self-hosted"),
              "pool": [("gemma-4-31b", "self-hosted"), ("gpt-5-mini", "openai-api")],
              "mixed-pool": [("gemma-4-31b", "self-hosted"), ("llama-4-maverick", "together-api")]}
    sdk = make_sdk(clearance.url, backend, model_map=routes)
    chat(sdk, "fast")
    chat(sdk, "pool")
    with pytest.raises(openai.PermissionDeniedError) as info:
        chat(sdk, "mixed-pool")  # any member may serve an alias: all must be cleared
    assert [r["catalog_model"] for r in info.value.body["reasons"]] == ["llama-4-maverick"]
    assert backend.models_served == ["fast", "pool"]


def test_a_bare_model_id_needs_every_route_cleared_unless_the_deployment_is_known(clearance, backend):
    clearance.decision_for = lambda body: decision_json(
        allowed=[{"model": "gpt-5-mini", "deployment": "openai-api", "rank": 1, "price_per_mtok": 1, "obligations": []}],
        denied=[{"model": "gpt-5-mini", "deployment": "openai-us", "reasons": [{"code": "DATA_RESIDENCY", "message": "m"}]}])
    with pytest.raises(openai.PermissionDeniedError, match="DATA_RESIDENCY"):
        chat(make_sdk(clearance.url, backend, deployment=None), "gpt-5-mini")
    chat(make_sdk(clearance.url, backend, deployment="openai-api"), "gpt-5-mini")
    with pytest.raises(openai.PermissionDeniedError):
        chat(make_sdk(clearance.url, backend, deployment="openai-us"), "gpt-5-mini")
    assert backend.models_served == ["gpt-5-mini"]


def test_a_per_request_profile_header_is_used_and_not_forwarded(clearance, backend):
    sdk = make_sdk(clearance.url, backend, workload=None, workload_profile="claims-default")
    chat(sdk, "gpt-5-mini")
    chat(sdk, "gpt-5-mini", extra_headers={"X-Clearance-Workload-Profile": "claims-batch"})
    assert [d["body"] for d in clearance.decisions] == [
        {"app_id": APP, "workload_profile": "claims-default"}, {"app_id": APP, "workload_profile": "claims-batch"}]
    assert all("x-clearance-workload-profile" not in {k.lower() for k in r["headers"]} for r in backend.requests)


def test_requests_naming_no_model_pass_through_without_a_decision(clearance, backend):
    sdk = make_sdk(clearance.url, backend)
    assert [m.id for m in sdk.models.list()] == ["gpt-5-mini"]
    assert clearance.decisions == [] and backend.requests[0]["path"] == "/v1/models"


# --- requests shaped to slip past the check (plain httpx through the transport) --------------

@pytest.fixture
def http(clearance, backend):
    transport = ClearanceTransport(Client(clearance.url), app_id=APP, workload=WORKLOAD, deployment="openai-api",
                                   model_map=ROUTES)
    with httpx.Client(transport=transport, base_url=backend.url + "/v1") as client:
        yield client


def refused(response: httpx.Response, code: str = "model_not_cleared") -> bool:
    return response.status_code in (400, 403) and response.json()["error"]["code"] == code


def test_no_model_on_a_model_endpoint_is_refused(http, backend):
    for path in ("/chat/completions", "/responses", "/embeddings", "/moderations", "/images/generations",
                 "/Chat/Completions", "/chat/completions/"):
        assert refused(http.post(path, json={"messages": []}), "model_unverifiable"), path
    assert backend.requests == []


def test_duplicate_model_members_are_refused(http, backend):
    body = b'{"model": "gpt-5-mini", "model": "llama", "messages": []}'
    assert refused(http.post("/chat/completions", content=body, headers={"content-type": "application/json"}),
                   "model_unverifiable")
    assert backend.requests == []


def test_json_sent_as_text_is_still_checked(http, backend):
    body = json.dumps({"model": "llama", "messages": []})
    assert refused(http.post("/chat/completions", content=body, headers={"content-type": "text/plain"}))
    assert backend.requests == []


def test_models_nested_in_tools_and_sessions_are_checked(http, backend):
    tool = {"model": "gpt-5-mini", "input": "draw", "tools": [{"type": "image_generation", "model": "deepseek"}]}
    assert refused(http.post("/responses", json=tool))
    session = {"session": {"type": "realtime", "model": "llama"}}
    assert refused(http.post("/realtime/client_secrets", json=session))
    assert backend.requests == []


def test_query_and_azure_deployment_paths_are_checked(http, backend):
    assert refused(http.post("/chat/completions?model=llama", json={"model": "gpt-5-mini", "messages": []}))
    assert refused(http.post("/openai/deployments/llama/chat/completions", json={"messages": []}))
    assert backend.requests == []


def test_a_non_string_model_is_refused(http, backend):
    assert refused(http.post("/chat/completions", json={"model": ["gpt-5-mini", "llama"], "messages": []}),
                   "model_unverifiable")
    assert refused(http.post("/chat/completions", json={"model": 5, "messages": []}), "model_unverifiable")
    assert backend.requests == []


def test_batches_are_refused_since_their_models_are_in_a_file(http, backend):
    response = http.post("/batches", json={"input_file_id": "file-1", "endpoint": "/v1/chat/completions",
                                           "completion_window": "24h"})
    assert refused(response, "model_unverifiable") and "batch" in response.json()["error"]["message"]
    assert backend.requests == []


def test_unreadable_bodies_on_model_endpoints_are_refused(http, backend):
    assert refused(http.post("/chat/completions", content=b"\x00\x01", headers={"content-type": "application/octet-stream"}),
                   "model_unverifiable")
    assert refused(http.post("/chat/completions", content=b"{not json", headers={"content-type": "application/json"}),
                   "model_unverifiable")
    assert backend.requests == []


def test_a_file_upload_passes_without_a_decision(http, clearance, backend):
    response = http.post("/files", files={"file": ("data.jsonl", b'{"x": 1}\n')}, data={"purpose": "assistants"})
    assert response.status_code == 200 and clearance.decisions == []


# --- asyncio ----------------------------------------------------------------------------------

def make_async_sdk(clearance_url, backend, **kw) -> openai.AsyncOpenAI:
    transport = AsyncClearanceTransport(AsyncClient(clearance_url, "k"), app_id=APP, workload=WORKLOAD,
                                        deployment="openai-api", model_map=ROUTES, **kw)
    return openai.AsyncOpenAI(base_url=backend.url + "/v1", api_key="sk-test", max_retries=0,
                              http_client=httpx.AsyncClient(transport=transport))


def test_async_transport(clearance, backend, dead_url):
    async def run():
        sdk = make_async_sdk(clearance.url, backend)
        done = await sdk.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}])
        assert done.choices[0].message.content == "hello from gpt-5-mini"
        stream = await sdk.chat.completions.create(model="gpt-5-mini", messages=[], stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "hello from gpt-5-mini"
        with pytest.raises(openai.PermissionDeniedError, match="LICENCE_MAU_CAP"):
            await sdk.chat.completions.create(model="llama", messages=[], stream=True)
        results = await asyncio.gather(*[sdk.embeddings.create(model="gpt-5-mini", input="x") for _ in range(5)])
        assert len(results) == 5
        down = make_async_sdk(dead_url, backend)
        with pytest.raises(openai.InternalServerError):
            await down.responses.create(model="gpt-5-mini", input="hi")
        await sdk.close()
        await down.close()
    asyncio.run(run())
    assert len(clearance.decisions) == 1
    assert backend.models_served == ["gpt-5-mini"] * 7


def test_transport_configuration_errors_are_loud(clearance):
    with pytest.raises(ValueError, match="workload"):
        ClearanceTransport(Client(clearance.url), app_id=APP)
    with pytest.raises(TypeError, match="model_map"):
        ClearanceTransport(Client(clearance.url), app_id=APP, workload=WORKLOAD, model_map={"x": ("a",)})
    with pytest.raises(ValueError, match="ttl"):
        ClearanceTransport(Client(clearance.url), app_id=APP, workload=WORKLOAD, ttl_seconds=-1)
