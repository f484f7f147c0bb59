"""Replaying recorded decisions from the audit trail: paged reads, --since/--last, and the CLI
end to end against a real database."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import app as cli
from api.cli_policy import parse_since
from api.reload import reload_policy
from api.services import Services
from audit.replay_source import iter_decision_inputs
from policy import Caller, DecisionRequest
from tests.bundles import HELPDESK_REQUEST, LLAMA_MODELS, commit_all, lower_llama_cap


def record(services: Services, mau: int) -> str:
    """Decide and record one helpdesk decision as the service does; returns its id."""
    request = copy.deepcopy(HELPDESK_REQUEST)
    request["workload"]["monthly_active_users"] = mau
    decision = services.decider.decide_blocking(DecisionRequest.model_validate(request), caller=Caller("k1", "app"))
    return str(decision["decision_id"])


@pytest.fixture
def recorded(services_on_copy: Services) -> list[str]:
    """25 decisions, with a policy_reload entry among them (not a decision: never replayed)."""
    ids = [record(services_on_copy, 1_000_000 * (i + 1)) for i in range(12)]
    reload_policy(services_on_copy, requested_by="test")
    return ids + [record(services_on_copy, 1_000_000 * (i + 13)) for i in range(13)]


def test_pages_yield_every_decision_in_order(services_on_copy: Services, recorded: list[str]) -> None:
    rows = list(iter_decision_inputs(services_on_copy.store, page_size=7))
    assert [r[0] for r in rows] == recorded
    decision_id, policy_input, result = rows[3]
    assert policy_input["workload"]["monthly_active_users"] == 4_000_000
    assert result["decision_id"] == decision_id and result["outcome"] == "allow"


def test_last_and_since_select_the_newest(services_on_copy: Services, recorded: list[str]) -> None:
    store = services_on_copy.store
    assert [r[0] for r in iter_decision_inputs(store, last=10, page_size=4)] == recorded[-10:]
    assert [r[0] for r in iter_decision_inputs(store, last=100)] == recorded
    past = datetime.now(UTC) - timedelta(hours=1)
    assert [r[0] for r in iter_decision_inputs(store, since=past, last=3)] == recorded[-3:]
    assert list(iter_decision_inputs(store, since=datetime.now(UTC) + timedelta(hours=1))) == []
    assert list(iter_decision_inputs(store, last=0)) == []


def test_parse_since() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("12h", now=now) == now - timedelta(hours=12)
    assert parse_since("2026-04-01") == datetime(2026, 4, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="duration"):
        parse_since("last tuesday")


def test_impact_from_the_audit_trail(
    services_on_copy: Services, recorded: list[str], repo: Path, migrated_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Below the org's figure for the month before the Llama 4 release (org.yaml): denies Llama
    # to every recorded decision, whatever MAU each workload sent (recorded, no longer deciding).
    lower_llama_cap(repo / "rego", cap=10_500_000)
    commit_all(repo, "cap", "head")
    monkeypatch.setenv("CLEARANCE_DATABASE_URL", migrated_database)

    result = CliRunner().invoke(cli, ["policy", "impact", "--base", "base", "--head", "head", "--dir",
                                      str(repo / "rego"), "--since", "1h", "--format", "json", "--fail-on", "breaking"])

    assert result.exit_code == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["replayed"] == 25 and "the audit trail (since 1h)" in report["inputs"]
    # Recorded under the base's revision (the services ran a copy of the same pack): the
    # recorded answers stand for the base's, which is not asked again.
    assert report["base_from_trail"] == 25
    assert {(r["model"], r["decisions"]) for r in report["newly_denied"]} == {(m, 25) for m in LLAMA_MODELS}
    assert report["examples"][0]["decision_id"] in recorded
    assert report["codes_appeared"] == [{"code": "LICENCE_MAU_CAP", "routes": 25 * 6, "decisions": 25}]
    assert report["obligations_appeared"] == []

    last = CliRunner().invoke(cli, ["policy", "impact", "--base", "base", "--head", "head", "--dir",
                                    str(repo / "rego"), "--last", "5", "--format", "json"])
    assert last.exit_code == 0, last.stderr
    assert orjson.loads(last.stdout)["replayed"] == 5
