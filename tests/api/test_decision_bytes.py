"""What an audited decision records and answers is byte for byte what it was before the service
kept encodings with its cached evaluations (api/decider.py, audit/entry.py): every entry's leaf
members and blobs equal those made from scratch from the request alone, whatever other requests
the cache has seen, and the answer's bytes are what orjson writes of the decision."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.decider import Decider, PolicyHolder
from api.metrics import Metrics
from api.schemas import DecisionResponse
from audit.canonical import canonical_bytes
from audit.chain import encode_members
from audit.entry import LeafDraft, draft_leaf, prepare_fields
from audit.tlog.leaf import result_sha256
from policy import ActivePolicy, Caller, DecisionRequest, GitInfo, load_policy
from tests.api.conftest import Keys, bearer
from tests.bundles import REGO, copy_bundle, edit

APP = Caller(key_id="k_app", role="app")
OTHER_KEY = Caller(key_id="k_other", role="app")
WORKLOAD = {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
            "data_classification": "confidential"}
HELPDESK = {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "minimal",
            "data_classification": "internal"}


def request(app_id: str = "claims-summariser", workload: dict[str, Any] | None = None,
            **context: Any) -> DecisionRequest:
    body: dict[str, Any] = {"app_id": app_id, "workload": workload or WORKLOAD}
    if context:
        body["context"] = context
    return DecisionRequest.model_validate(body)


def fresh_draft(policy: ActivePolicy, req: DecisionRequest, caller: Caller, decision_id: str) -> LeafDraft:
    """The leaf as the writer makes it from plain fields, nothing cached or pre-encoded: the
    entry the service recorded before it kept encodings with its evaluations."""
    policy_input = orjson.loads(orjson.dumps(policy.input_for(req, caller)))
    answer = policy.evaluate(policy_input)
    git = policy.bundle.git
    fields = {
        "kind": "decision", "decision_id": decision_id, "app_id": req.app_id, "caller_key_id": caller.key_id,
        "input": policy_input, "result": {**answer, "policy_revision": policy.revision},
        "outcome": answer["outcome"], "policy_revision": policy.revision, "engine": policy.engine.name,
        "context": req.context.recorded(), "policy_git": git.to_dict() if git else None,
    }
    return draft_leaf(encode_members(prepare_fields(fields)))


def recorded_draft(decider: Decider, policy: ActivePolicy, req: DecisionRequest,
                   caller: Caller) -> tuple[LeafDraft, dict[str, Any]]:
    """The leaf the service submits for ``req`` (as ``AuditWriter.append_async`` drafts it)."""
    fields, decision = decider.entry(policy, req, caller, decider.evaluate(policy, req, caller))
    return draft_leaf(encode_members(prepare_fields(fields))), decision


def assert_same_leaf(got: LeafDraft, expected: LeafDraft) -> None:
    assert canonical_bytes(got.members) == canonical_bytes(expected.members)
    assert got.blobs == expected.blobs  # bytes, SHA-256 and facets of the input and result blobs
    for blob in got.blobs:
        assert blob.sha256 == hashlib.sha256(blob.data).digest()


@pytest.fixture(scope="module")
def policy() -> ActivePolicy:
    return load_policy(REGO)


def decider_for(policy: ActivePolicy) -> Decider:
    return Decider(policy=PolicyHolder(policy), shadow=None, writer=None, metrics=Metrics.create())  # type: ignore[arg-type]


@pytest.mark.parametrize("context", [
    {},
    {"request_id": None},
    {"request_id": "req-1", "trace_id": "t-9"},
    {"gateway": {"name": "edge", "team": "claims"}},
    {"gateway": {}},
])
def test_an_entry_from_the_cache_is_the_entry_made_from_scratch(policy: ActivePolicy, context: dict[str, Any]) -> None:
    decider = decider_for(policy)
    for _ in range(3):  # the first from the engine, then from the cache
        req = request(**context)
        draft, decision = recorded_draft(decider, policy, req, APP)
        assert_same_leaf(draft, fresh_draft(policy, req, APP, decision["decision_id"]))
        assert draft.members["result_sha256"] == result_sha256(decision)  # what the client checks
    assert decider.cache_info().hits == 2


def test_requests_never_share_recorded_bytes_that_are_not_theirs(policy: ActivePolicy, tmp_path: Path) -> None:
    """One cache, interleaved requests that share all but one thing with another: another app,
    another caller, another revision (same request), the same revision loaded from elsewhere
    (another ``policy_git``). Each entry is the one made from scratch for its own request."""
    stricter_dir = copy_bundle(tmp_path / "stricter")
    edit(stricter_dir / "data" / "apps.yaml", "data_classification_floor: confidential  # claim files",
         "data_classification_floor: restricted  # claim files")
    stricter = load_policy(stricter_dir)
    # The equal bundle from a commit: same revision (the content hash), another policy_git.
    elsewhere = load_policy(copy_bundle(tmp_path / "copy"), git=GitInfo(commit="c0ffee" * 6 + "beef", dirty=False,
                                                                        path="rego"))
    assert elsewhere.revision == policy.revision and stricter.revision != policy.revision
    assert policy.bundle.git != elsewhere.bundle.git

    cases = [
        (policy, request(), APP),
        (policy, request("internal-helpdesk", HELPDESK), APP),
        (policy, request("claims-summariser", HELPDESK), APP),  # the same workload for another app
        (policy, request(), OTHER_KEY),
        (stricter, request(), APP),
        (elsewhere, request(), APP),
    ]
    decider = decider_for(policy)
    drafts: list[LeafDraft] = []
    for _ in range(2):
        for case_policy, req, caller in cases:
            draft, decision = recorded_draft(decider, case_policy, req, caller)
            assert_same_leaf(draft, fresh_draft(case_policy, req, caller, decision["decision_id"]))
            drafts.append(draft)
    first = drafts[:len(cases)]
    inputs = [d.members["input_sha256"] for d in first]
    results = [d.members["result_sha256"] for d in first]
    assert len(set(inputs[:5])) == 5  # app, workload and caller are in the input
    assert inputs[5] == inputs[0]  # an equal bundle resolves the same input...
    assert first[5].members["policy_git"] != first[0].members["policy_git"]  # ...but records its own git
    assert results[4] != results[0]  # the revision is in the result blob
    assert orjson.loads(first[4].blobs[1].data)["policy_revision"] == stricter.revision
    # The second round came from the cache and recorded the same leaves (new ids aside).
    for again, before in zip(drafts[len(cases):], first, strict=True):
        assert again.blobs == before.blobs
        assert {k: v for k, v in again.members.items() if k != "decision_id"} == \
               {k: v for k, v in before.members.items() if k != "decision_id"}


def test_the_answer_is_what_orjson_writes_of_the_decision(client: TestClient, keys: Keys) -> None:
    """POST /v1/decisions writes its answer spliced from cached bytes, without response_model:
    the bytes are those orjson writes of the decision (as the endpoint wrote them before), and
    the documented model would not change a value."""
    body = {"app_id": "claims-summariser", "workload": WORKLOAD, "context": {"request_id": "r-ü\u2028\"x"}}
    for _ in range(2):  # engine, then cache
        response = client.post("/v1/decisions", json=body, headers=bearer(keys.own_app))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        decision = orjson.loads(response.content)
        assert list(decision) == ["decision_id", "outcome", "allowed", "denied", "policy_revision", "audit"]
        assert orjson.dumps(decision) == response.content
        assert DecisionResponse.model_validate(decision).model_dump(mode="json") == decision
        assert decision["audit"]["entry"]["context"] == {"request_id": "r-ü\u2028\"x"}


def test_the_openapi_schema_still_documents_the_response_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ok = spec["paths"]["/v1/decisions"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DecisionResponse"}
    assert set(spec["components"]["schemas"]["DecisionResponse"]["properties"]) == {
        "decision_id", "outcome", "allowed", "denied", "policy_revision", "audit"}


def test_the_answer_bytes_kept_with_an_evaluation_are_those_of_its_revision(policy: ActivePolicy) -> None:
    # A cached evaluation belongs to one revision; asked for another, it must not answer the first's.
    evaluation = decider_for(policy).evaluate(policy, request(), APP)
    for revision in (policy.revision, "sha256:other", policy.revision):
        decision = {"decision_id": "0190f000-0000-7000-8000-000000000001", **evaluation.answer,
                    "policy_revision": revision}
        spliced = b'{"decision_id":"0190f000-0000-7000-8000-000000000001"' + evaluation.answer_json(revision) + b"}"
        assert spliced == orjson.dumps(decision)
