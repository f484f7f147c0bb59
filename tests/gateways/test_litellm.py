"""Clearance in front of the real LiteLLM proxy (the pinned release, mocked deployments).

The guardrail class (``clearance_client.litellm.ClearanceGuardrail``) checks every deployment
the router resolves, fallbacks included; LiteLLM's own generic guardrail calls Clearance's
endpoint. Each case is read back from the audit trail, not only from the proxy's answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Clearance, LiteLLMProxy, chat, clearance_server, litellm_config, litellm_proxy


@pytest.fixture(scope="module")
def proxy(clearance: Clearance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    with litellm_proxy(tmp_path_factory.mktemp("litellm"), litellm_config(clearance.url, substitute=True),
                       gateway_key=clearance.gateway_keys["litellm-main"]) as running:
        yield running


def _call_entries(clearance: Clearance, call_id: str) -> list[dict[str, object]]:
    return clearance.audit(call_id=call_id)


def test_a_cleared_deployment_serves_and_its_report_is_recorded(clearance: Clearance, proxy: LiteLLMProxy) -> None:
    answer = chat(proxy, "sk-helpdesk", "safe")
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "served by gemma-4-31b"
    call_id = answer.headers["x-litellm-call-id"]
    # The check of the group, then the check of the deployment: both recorded, for the helpdesk.
    decisions = [e for e in _call_entries(clearance, call_id) if e["kind"] == "decision"]
    assert len(decisions) == 2 and all(e["app_id"] == "internal-helpdesk" for e in decisions)
    checked = clearance.entry(str(decisions[-1]["decision_id"]))
    assert checked["context"]["gateway"] == {"name": "litellm-main", "team": "it-service-desk",
                                             "key_alias": "helpdesk-slackbot", "requested_model": "safe",
                                             "call_id": call_id}
    # The report of the route that served, recorded after the answer.
    served = clearance.wait_for(lambda: clearance.audit(served_for=str(decisions[-1]["decision_id"])))
    assert len(served) == 1 and served[0]["kind"] == "served" and served[0]["app_id"] == "internal-helpdesk"
    assert clearance.audit(kind="served", call_id=call_id, served="cleared") == served


def test_a_denied_route_is_blocked_with_its_reason_codes(clearance: Clearance, proxy: LiteLLMProxy) -> None:
    # This key may call only the group whose one deployment the helpdesk may not use: no substitute.
    answer = chat(proxy, "sk-reasoning-only", "reasoning")
    assert answer.status_code == 403, answer.text
    text = answer.text
    assert "EU_SYSTEMIC_RISK" in text and "FOREIGN_HOSTED_API" in text
    assert "served by" not in text
    assert clearance.audit(served="cleared", requested_model="reasoning") == []


def test_a_fallback_to_a_denied_deployment_is_blocked(clearance: Clearance, proxy: LiteLLMProxy) -> None:
    """flaky's one deployment is cleared but fails; the router falls back to reasoning, whose
    deployment is denied: the fallback is checked and refused, nothing serves."""
    answer = chat(proxy, "sk-helpdesk", "flaky")
    assert answer.status_code >= 400, answer.text
    assert "Clearance has not cleared the deployment deepseek/deepseek-v4" in answer.text
    assert "served by" not in answer.text
    call_id = answer.headers["x-litellm-call-id"]
    decisions = [e for e in _call_entries(clearance, call_id) if e["kind"] == "decision"]
    routes = [clearance.entry(str(e["decision_id"]))["context"]["gateway"].get("requested_model") for e in decisions]
    assert routes == ["flaky", "flaky", "reasoning"]  # the group, its deployment, the fallback's deployment
    assert clearance.audit(kind="served", call_id=call_id) == []


def test_an_uncleared_group_is_substituted_by_the_best_cleared_one(clearance: Clearance, proxy: LiteLLMProxy) -> None:
    answer = chat(proxy, "sk-helpdesk", "reasoning")
    assert answer.status_code == 200, answer.text
    # safe (gemma-4-31b self-hosted, rank 3) is the best group all of whose deployments are cleared.
    assert answer.json()["choices"][0]["message"]["content"] == "served by gemma-4-31b"
    call_id = answer.headers["x-litellm-call-id"]
    served = clearance.wait_for(lambda: clearance.audit(kind="served", call_id=call_id))
    assert len(served) == 1


def test_an_unmapped_team_is_refused(clearance: Clearance, proxy: LiteLLMProxy) -> None:
    answer = chat(proxy, "sk-stranger", "safe")
    assert answer.status_code == 403, answer.text
    assert "maps to no app" in answer.text


def test_the_proxy_lists_only_cleared_groups(proxy: LiteLLMProxy) -> None:
    import httpx

    listed = httpx.get(f"{proxy.url}/v1/models", headers={"Authorization": "Bearer sk-helpdesk"}, timeout=30)
    assert listed.status_code == 200, listed.text
    names = {m["id"] for m in listed.json()["data"]}
    assert {"safe", "fast", "flaky"} <= names and "reasoning" not in names


def test_generic_guardrail_api(clearance: Clearance, tmp_path: Path) -> None:
    """LiteLLM's own generic guardrail, pointed at Clearance's endpoint: it sees the group only,
    which is cleared only when every route gateways.yaml gives it is."""
    with litellm_proxy(tmp_path / "generic", litellm_config(clearance.url, substitute=False, generic=True),
                       gateway_key=clearance.gateway_keys["litellm-main"]) as generic:
        assert chat(generic, "sk-helpdesk", "safe").status_code == 200
        blocked = chat(generic, "sk-helpdesk", "reasoning")
        assert blocked.status_code >= 400 and "EU_SYSTEMIC_RISK" in blocked.text
        assert "served by" not in blocked.text
        stranger = chat(generic, "sk-stranger", "safe")  # refused in the body: obeyed whatever the settings
        assert stranger.status_code >= 400 and "maps to no app" in stranger.text


def test_clearance_down_blocks_every_call(pg_server_url: str, tmp_path: Path) -> None:
    """A Clearance that stops answering: both the guardrail class and the generic guardrail
    fail closed (the class answers 503; the generic one, configured fail_closed, refuses)."""
    with clearance_server(pg_server_url, tmp_path / "home") as doomed:
        key = doomed.gateway_keys["litellm-main"]
        with litellm_proxy(tmp_path / "class", litellm_config(doomed.url, substitute=True), gateway_key=key) as cls, \
                litellm_proxy(tmp_path / "generic", litellm_config(doomed.url, substitute=False, generic=True),
                              gateway_key=key) as generic:
            assert chat(cls, "sk-helpdesk", "safe").status_code == 200
            doomed.server.kill()
            down = chat(cls, "sk-helpdesk", "safe")
            assert down.status_code == 503, down.text
            assert "Clearance is unreachable" in down.text and "served by" not in down.text
            refused = chat(generic, "sk-helpdesk", "safe")
            assert refused.status_code >= 400 and "served by" not in refused.text
