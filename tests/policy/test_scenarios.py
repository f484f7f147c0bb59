"""Scenario tests: the reference bundle (rego/) on the situations the product is sold for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from policy import ActivePolicy, Decision, DecisionRequest, decide
from policy.catalog import DeploymentMode

CN_MODELS = {"glm-5", "glm-5.1", "deepseek-v4", "deepseek-v3.2", "qwen3-coder-next", "qwen3.6-plus", "mano-p-1.0"}
LLAMAS = {"llama-4-scout", "llama-4-maverick"}


def request(app_id: str, **workload: Any) -> DecisionRequest:
    """A workload of ``app_id``; sector and jurisdictions are the app's profile's unless given."""
    base: dict[str, Any] = {
        "task": "summarization",
        "quality_tier": "commodity",
        "regulatory_tier": "standard",
        "data_classification": "internal",
        "dangerous_capability": "none",
        "commercial": True,
        "monthly_active_users": 1000,
    }
    base.update(workload)
    return DecisionRequest.model_validate({"app_id": app_id, "workload": base})


def run(policy: ActivePolicy, app_id: str, **workload: Any) -> Decision:
    return decide(policy, request(app_id, **workload))[1]


def codes(decision: Decision, model: str) -> dict[str, set[str]]:
    """deployment id -> reason codes, for every denied route of ``model``."""
    return {d.deployment: {r.code for r in d.reasons} for d in decision.denied if d.model == model}


def cleared(decision: Decision, model: str) -> list[Any]:
    return [a for a in decision.allowed if a.model == model]


def routes(policy: ActivePolicy, models: Iterable[str]) -> set[tuple[str, str]]:
    wanted = set(models)
    return {(m.id, d.id) for m in policy.bundle.catalog.models if m.id in wanted for d in m.deployments}


def denied_with(decision: Decision, code: str) -> set[tuple[str, str]]:
    return {(d.model, d.deployment) for d in decision.denied if code in {r.code for r in d.reasons}}


def test_the_workload_mau_no_longer_decides_the_llama_cap(policy: ActivePolicy) -> None:
    # The org's figures (org.yaml) are far below 700M: an app sending 800M is licensed; the
    # figure is recorded in the input, and deprecated.
    policy_input, decision = decide(policy, request("social-feed", monthly_active_users=800_000_000))
    assert policy_input["workload"]["monthly_active_users"] == 800_000_000
    for model in LLAMAS:
        assert cleared(decision, model), f"{model} not cleared: {codes(decision, model)}"
    assert not denied_with(decision, "LICENCE_MAU_CAP")
    assert not any("licence_mau_near_cap" in a.obligations for a in decision.allowed)


def test_glasswing_model_gated_for_apps_not_enrolled(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", task="security_research", quality_tier="frontier")
    assert routes(policy, {"claude-mythos-preview"}) <= denied_with(decision, "CAPABILITY_GATED")


def test_enrolled_security_team_cleared_for_defensive_research(policy: ActivePolicy) -> None:
    decision = run(
        policy, "security-operations", task="security_research", quality_tier="frontier",
        dangerous_capability="cyber_defense",
    )
    assert cleared(decision, "claude-mythos-preview"), codes(decision, "claude-mythos-preview")
    assert not denied_with(decision, "DANGEROUS_CAPABILITY_NOT_APPROVED")


def test_enrolled_team_off_purpose_is_denied(policy: ActivePolicy) -> None:
    decision = run(policy, "security-operations", task="summarization", quality_tier="frontier")
    assert routes(policy, {"claude-mythos-preview"}) <= denied_with(decision, "CAPABILITY_PURPOSE")
    assert not denied_with(decision, "CAPABILITY_GATED") & routes(policy, {"claude-mythos-preview"})


def test_dangerous_capability_without_approval_denies_every_route(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", task="security_research", dangerous_capability="cyber_offense")
    assert decision.outcome == "deny"
    assert denied_with(decision, "DANGEROUS_CAPABILITY_NOT_APPROVED") == routes(policy, [m.id for m in policy.bundle.catalog.models])


def test_public_sector_denies_every_chinese_origin_model(policy: ActivePolicy) -> None:
    decision = run(policy, "citizen-services", sector="public_sector")
    cn = {m.id for m in policy.bundle.catalog.models if m.origin_country == "CN"}
    assert CN_MODELS <= cn and "qwen3.6-plus" in cn
    assert routes(policy, cn) <= denied_with(decision, "PROVENANCE_RESTRICTED")
    assert not {a.model for a in decision.allowed} & cn
    assert decision.outcome == "allow"  # western models still serve


def test_general_sector_does_not_restrict_provenance(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", data_classification="public")
    assert not denied_with(decision, "PROVENANCE_RESTRICTED")


def test_foreign_hosted_api_for_internal_data(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", data_classification="internal")
    assert ("deepseek-v4", "deepseek-api") in denied_with(decision, "FOREIGN_HOSTED_API")
    # The helpdesk's profile puts its data at internal at least: asking for public changes nothing.
    public = run(policy, "internal-helpdesk", data_classification="public")
    assert ("deepseek-v4", "deepseek-api") in denied_with(public, "FOREIGN_HOSTED_API")


def test_regulated_tier_needs_safety_post_training(policy: ActivePolicy) -> None:
    decision = run(policy, "claims-summariser", regulatory_tier="regulated", sector="financial_services", quality_tier="advanced")
    assert routes(policy, {"deepseek-v4"}) <= denied_with(decision, "SAFETY_POST_TRAINING")
    assert cleared(decision, "claude-opus-4.6"), codes(decision, "claude-opus-4.6")


def test_attestation_lifts_safety_post_training(policy: ActivePolicy) -> None:
    ws = {"regulatory_tier": "regulated", "quality_tier": "commodity", "task": "summarization"}
    attested = run(policy, "eu-patient-records", **ws)
    assert not {c for c in codes(attested, "gemma-4-31b").values() for c in c} & {"SAFETY_POST_TRAINING"}
    other = run(policy, "claims-summariser", **ws)
    assert routes(policy, {"gemma-4-31b"}) <= denied_with(other, "SAFETY_POST_TRAINING")


def test_restricted_eu_data_stays_on_allowed_routes(policy: ActivePolicy) -> None:
    decision = run(
        policy, "eu-patient-records", sector="healthcare", jurisdictions=["EU"],
        data_classification="restricted", regulatory_tier="standard",
    )
    residency = denied_with(decision, "DATA_RESIDENCY")
    for model in policy.bundle.catalog.models:
        for dep in model.deployments:
            route = (model.id, dep.id)
            if dep.mode == DeploymentMode.vendor_api and not dep.zero_data_retention:
                assert route in residency, route
            if dep.mode == DeploymentMode.self_hosted:
                assert route not in residency, route
    assert any("self_host_only" in a.obligations for a in decision.allowed)


@pytest.mark.parametrize(
    "workload",
    [
        {},
        {"quality_tier": "frontier", "task": "reasoning"},
        {"regulatory_tier": "minimal", "data_classification": "public", "commercial": False},
    ],
)
def test_mythos_5_is_always_withheld(policy: ActivePolicy, workload: dict[str, Any]) -> None:
    for app in ("internal-helpdesk", "security-operations"):
        decision = run(policy, app, **workload)
        assert routes(policy, {"claude-mythos-5"}) <= denied_with(decision, "MODEL_WITHHELD")


def test_commercial_work_excludes_noncommercial_licence(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", commercial=True)
    # The weights are CC-BY-NC-4.0; Cohere's API has commercial terms of its own.
    assert denied_with(decision, "LICENCE_NONCOMMERCIAL") & routes(policy, {"command-r-plus"}) == {("command-r-plus", "self-hosted")}
    research = run(policy, "internal-helpdesk", commercial=False)
    assert not routes(policy, {"command-r-plus"}) & denied_with(research, "LICENCE_NONCOMMERCIAL")


def test_model_training_respects_output_terms(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", task="model_training", quality_tier="frontier")
    assert routes(policy, {"gpt-5.4", "claude-opus-4.6"}) <= denied_with(decision, "LICENCE_OUTPUT_TRAINING")


def test_commodity_ranking_is_cheapest_first(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", data_classification="public")
    prices = [a.price_per_mtok for a in decision.allowed]
    assert len(prices) > 3
    assert prices == sorted(prices)
    assert [a.rank for a in decision.allowed] == list(range(1, len(prices) + 1))


def test_frontier_ranking_is_strongest_first(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", quality_tier="frontier", task="reasoning")
    strength = {m.id: m.strength for m in policy.bundle.catalog.models}
    ranked = [strength[a.model] for a in decision.allowed]
    assert len(ranked) > 1
    assert ranked == sorted(ranked, reverse=True)


def test_every_route_answered_once_with_all_reasons(policy: ActivePolicy) -> None:
    decision = run(policy, "citizen-services", sector="public_sector", regulatory_tier="critical", data_classification="restricted", jurisdictions=["EU"])
    seen = [(a.model, a.deployment) for a in decision.allowed] + [(d.model, d.deployment) for d in decision.denied]
    assert sorted(seen) == sorted(routes(policy, [m.id for m in policy.bundle.catalog.models]))
    deepseek_api = codes(decision, "deepseek-v4")["deepseek-api"]
    assert {"PROVENANCE_RESTRICTED", "FOREIGN_HOSTED_API", "SAFETY_POST_TRAINING", "DATA_RESIDENCY"} <= deepseek_api
    assert all(a.obligations.count("human_review") == 1 for a in decision.allowed)


def test_same_input_same_decision_bytes(policy: ActivePolicy) -> None:
    req = request("claims-summariser", regulatory_tier="regulated", sector="financial_services", jurisdictions=["EU", "US"])
    first = decide(policy, req, decision_id="fixed")[1].model_dump_json()
    for _ in range(20):
        assert decide(policy, req, decision_id="fixed")[1].model_dump_json() == first
