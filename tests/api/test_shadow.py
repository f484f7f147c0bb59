"""Shadow mode: the candidate decides beside the active policy, never changes an answer, and
each disagreement is counted and recorded in the decision's own signed entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.reload import reload_policy
from api.services import Services
from tests.audit.helpers import verify_whole
from policy import DecisionRequest, decide
from tests.api.conftest import Keys, bearer, make_keys
from tests.bundles import (
    app_fixtures,
    HELPDESK_REQUEST,
    LLAMA_MODELS,
    REGO,
    copy_bundle,
    edit,
    entries,
    start_services,
)


# regorus VMs are bound to the thread that made them: the test client's loop thread decides,
# pytest's main thread drops the services at teardown, and pyo3 reports that as unraisable.
# (The service itself releases retired policies on its loop thread: api/reload.py.)
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def shadow_dir(tmp_path: Path) -> Path:
    """A candidate that forbids the Llama 4 models for summaries: it disagrees with the active
    policy on summarisation workloads only."""
    candidate = copy_bundle(tmp_path / "candidate")
    edit(candidate / "data" / "models.yaml", "prohibited_uses: [defense]\n      attribution: Built with Llama",
         "prohibited_uses: [defense, summarization]\n      attribution: Built with Llama", count=2)
    return candidate


@pytest.fixture
def shadow_services(migrated_database: str, shadow_dir: Path, tmp_path: Path) -> Iterator[Services]:
    started = start_services(migrated_database, tmp_path / "home", policy_dir=REGO, shadow_policy_dir=shadow_dir)
    yield started
    started.close()


@pytest.fixture
def services(shadow_services: Services) -> Services:
    """What the ``client`` and ``keys`` fixtures serve."""
    return shadow_services


client, keys = app_fixtures()


def _body(services: Services, decision_id: str) -> dict[str, Any]:
    (body,) = [b for b in entries(services.store, "decision") if b["decision_id"] == decision_id]
    return body


def _metric(client: TestClient, agreement: str) -> float:
    text = client.get("/metrics").text
    line = next((ln for ln in text.splitlines()
                 if ln.startswith(f'clearance_shadow_decisions_total{{agreement="{agreement}"}}')), None)
    return float(line.split()[-1]) if line else 0.0


def test_disagreement_is_recorded_with_the_decision_and_counted(
    client: TestClient, keys: Keys, shadow_services: Services,
) -> None:
    answer = client.post("/v1/decisions", json=HELPDESK_REQUEST, headers=bearer(keys.other_app))
    assert answer.status_code == 200, answer.text
    decision = answer.json()

    # The answer is the active policy's, exactly.
    active = shadow_services.policy.current
    _, expected = decide(active, DecisionRequest.model_validate(HELPDESK_REQUEST))
    assert decision["policy_revision"] == active.revision
    assert [(r["model"], r["deployment"]) for r in decision["allowed"]] == [(r.model, r.deployment) for r in expected.allowed]
    assert any(r["model"] in LLAMA_MODELS for r in decision["allowed"])

    shadow = _body(shadow_services, decision["decision_id"])["shadow"]
    assert shadow["revision"] == shadow_services.shadow.current.revision != active.revision  # type: ignore[union-attr]
    assert shadow["differs"] is True and shadow["outcome"] == "allow"
    denied = shadow["diff"]["newly_denied"]
    assert {d["model"] for d in denied} == set(LLAMA_MODELS) and len(denied) == 6
    assert all([r["code"] for r in d["reasons"]] == ["LICENCE_PROHIBITED_USE"] for d in denied)
    assert shadow["diff"]["codes_appeared"] == {"LICENCE_PROHIBITED_USE": 6}
    assert "outcome" not in shadow["diff"]  # allow in both: no flip
    assert _metric(client, "differs") == 1.0
    assert verify_whole(shadow_services.store).valid

    # Queryable with the decision: the view's JSONB of the signed body holds the same verdict.
    from sqlalchemy import text

    with shadow_services.db.connect() as conn:
        ids = conn.execute(text("SELECT decision_id::text FROM audit_log "
                                "WHERE (body_json->'shadow'->>'differs')::boolean")).scalars().all()
    assert ids == [decision["decision_id"]]


def test_agreement_is_recorded_without_a_diff(client: TestClient, keys: Keys, shadow_services: Services) -> None:
    request = {**HELPDESK_REQUEST, "workload": {**HELPDESK_REQUEST["workload"], "task": "qa"}}
    decision = client.post("/v1/decisions", json=request, headers=bearer(keys.other_app)).json()
    shadow = _body(shadow_services, decision["decision_id"])["shadow"]
    assert shadow["differs"] is False and "diff" not in shadow
    assert _metric(client, "same") == 1.0 and _metric(client, "differs") == 0.0


def test_a_failing_candidate_never_changes_the_answer(
    client: TestClient, keys: Keys, shadow_services: Services, shadow_dir: Path,
) -> None:
    # The candidate renames the app: it cannot judge this workload at all.
    edit(shadow_dir / "data" / "apps.yaml", "- id: internal-helpdesk", "- id: internal-helpdesk-v2")
    gateways = shadow_dir / "data" / "gateways.yaml"  # its gateway mappings follow the rename
    gateways.write_text(gateways.read_text().replace(": internal-helpdesk\n", ": internal-helpdesk-v2\n"))
    assert reload_policy(shadow_services, requested_by="test").shadow["outcome"] == "accepted"  # type: ignore[index]

    answer = client.post("/v1/decisions", json=HELPDESK_REQUEST, headers=bearer(keys.other_app))

    assert answer.status_code == 200 and answer.json()["outcome"] == "allow"
    shadow = _body(shadow_services, answer.json()["decision_id"])["shadow"]
    assert shadow["outcome"] is None and shadow["differs"] is True
    assert "internal-helpdesk" in shadow["diff"]["head_error"]
    assert shadow["diff"]["outcome"] == {"from": "allow", "to": "deny"}
    assert _metric(client, "error") == 1.0


def test_policy_info_shows_the_shadow(client: TestClient, keys: Keys, shadow_services: Services, shadow_dir: Path) -> None:
    info = client.get("/v1/policy", headers=bearer(keys.admin)).json()
    assert info["shadow"]["revision"] == shadow_services.shadow.current.revision  # type: ignore[union-attr]
    assert info["shadow"]["directory"] == str(shadow_dir)


def test_a_broken_candidate_on_reload_keeps_the_previous_candidate(shadow_services: Services, shadow_dir: Path) -> None:
    before = shadow_services.shadow.current.revision  # type: ignore[union-attr]
    (shadow_dir / "licence.rego").write_text("package clearance.licence\n\nbroken if {\n")
    result = reload_policy(shadow_services, requested_by="test")
    assert result.accepted  # the active bundle is not at fault
    assert result.shadow is not None and result.shadow["outcome"] == "refused" and result.shadow["errors"]
    assert shadow_services.shadow.current.revision == before  # type: ignore[union-attr]
    (entry,) = entries(shadow_services.store, "policy_reload")
    assert entry["reload"]["shadow"]["outcome"] == "refused"


def test_without_shadow_mode_entries_carry_no_shadow_field(migrated_database: str, tmp_path: Path) -> None:
    services = start_services(migrated_database, tmp_path / "home", policy_dir=REGO)
    try:
        assert services.shadow is None
        with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
            keys = make_keys(services)
            decision = client.post("/v1/decisions", json=HELPDESK_REQUEST, headers=bearer(keys.other_app)).json()
            body = _body(services, decision["decision_id"])
            assert "shadow" not in body
            assert body["policy_git"] == (services.policy.current.bundle.git.to_dict()
                                          if services.policy.current.bundle.git else None)
    finally:
        services.close()
