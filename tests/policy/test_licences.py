"""Licence terms on the reference bundle, as the licences state them: the Llama 4 and Hunyuan
MAU caps measured on the org's figures for the month before each version's release, the
Hunyuan territory exclusion, and Command R+ under different terms for its weights and its API.

The org's figures are governance data (org.yaml), so each situation is a copy of the reference
bundle with other figures; the workload's ``monthly_active_users`` plays no part.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy import ActivePolicy, Decision, decide, evaluate_input, load_policy
from tests.conftest import REPO
from tests.policy.test_scenarios import LLAMAS, cleared, codes, denied_with, request, routes, run

LLAMA_CLAUSE = "Llama 4 Community License §2"
HUNYUAN = "hunyuan-a13b"
# Hunyuan-A13B was released 2025-06-27: its cap is measured on 2025-05. A small figure there
# keeps it licensed while the Llama month (2025-03) is what a test varies.
HUNYUAN_MONTH_OK = {"2025-05": 1}


@functools.lru_cache(maxsize=16)
def _policy_with(figures: tuple[tuple[str, int], ...], without_affiliates: tuple[tuple[str, int], ...]) -> ActivePolicy:
    root = Path(tempfile.mkdtemp(prefix="clearance-licence-")) / "rego"
    shutil.copytree(REPO / "rego", root)
    org_path = root / "data" / "org.yaml"
    doc = yaml.safe_load(org_path.read_text())
    doc["org"]["licensee_mau"] = dict(figures)
    if without_affiliates:
        doc["org"]["licensee_mau_without_affiliates"] = dict(without_affiliates)
    org_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_policy(root)


def policy_with(figures: dict[str, int], without_affiliates: dict[str, int] | None = None) -> ActivePolicy:
    """The reference bundle with these licensee MAU figures in org.yaml."""
    return _policy_with(tuple(sorted(figures.items())), tuple(sorted((without_affiliates or {}).items())))


def run_expanded(policy: ActivePolicy, app_id: str, jurisdictions: list[str]) -> Decision:
    """Decide with ``jurisdictions`` put straight into the effective workload, as they reach the
    policy once expanded (``["DE"]`` arrives as ``["DE", "EEA", "EU"]``): for codes that no
    reference app's profile covers, which a request could not name (422)."""
    policy_input = policy.input_for(request(app_id), None)
    policy_input = {**policy_input, "workload": {**policy_input["workload"], "jurisdictions": jurisdictions}}
    return evaluate_input(policy, policy_input, decision_id="expanded")


def reasons_of(decision: Decision, model: str, code: str) -> set[str]:
    return {r.message for d in decision.denied if d.model == model for r in d.reasons if r.code == code}


def llama_routes(policy: ActivePolicy) -> set[tuple[str, str]]:
    return routes(policy, LLAMAS)


# --- LICENCE_MAU_CAP: who is measured, and when --------------------------------------------------


def test_the_org_over_700m_before_the_llama_release_denies_every_llama_route(policy: ActivePolicy) -> None:
    over = policy_with({"2025-03": 812_000_000, **HUNYUAN_MONTH_OK})
    decision = run(over, "internal-helpdesk", monthly_active_users=5)
    assert denied_with(decision, "LICENCE_MAU_CAP") == llama_routes(over)
    assert reasons_of(decision, "llama-4-maverick", "LICENCE_MAU_CAP") == {
        "Llama 4 Community License §2: licensee and affiliates MAU 812M in 2025-03, "
        "before the 2025-04-05 release, exceeds 700M"
    }
    assert cleared(decision, "gemma-4-31b")  # other licences are not touched


@pytest.mark.parametrize(("figure", "licensed"), [(699_999_999, True), (700_000_000, True), (700_000_001, False)])
def test_both_sides_of_the_700m_boundary_in_the_month_before_release(figure: int, licensed: bool) -> None:
    decision = run(policy_with({"2025-03": figure, **HUNYUAN_MONTH_OK}), "internal-helpdesk")
    for model in LLAMAS:
        assert bool(cleared(decision, model)) is licensed, codes(decision, model)
        assert bool(reasons_of(decision, model, "LICENCE_MAU_CAP")) is not licensed
    if not licensed:
        assert reasons_of(decision, "llama-4-scout", "LICENCE_MAU_CAP") == {
            f"{LLAMA_CLAUSE}: licensee and affiliates MAU 700,000,001 in 2025-03, before the 2025-04-05 release, exceeds 700M"
        }


def test_figures_of_other_months_are_ignored() -> None:
    # 900M the month after the release and two months before it do not count; 2025-03 does.
    licensed = policy_with({"2025-01": 900_000_000, "2025-02": 900_000_000, "2025-03": 400_000_000,
                            "2025-04": 900_000_000, **HUNYUAN_MONTH_OK})
    decision = run(licensed, "internal-helpdesk")
    assert all(cleared(decision, m) for m in LLAMAS)
    assert not denied_with(decision, "LICENCE_MAU_CAP")


def test_a_missing_month_denies_and_names_the_missing_figure() -> None:
    gap = policy_with({"2025-02": 1, "2025-04": 1, **HUNYUAN_MONTH_OK})
    decision = run(gap, "internal-helpdesk")
    assert denied_with(decision, "LICENCE_MAU_CAP") == llama_routes(gap)
    assert reasons_of(decision, "llama-4-scout", "LICENCE_MAU_CAP") == {
        f"{LLAMA_CLAUSE}: org.yaml licensee_mau has no figure for 2025-03, the calendar month before the "
        "2025-04-05 release of Llama 4 Scout, so the 700M cap cannot be checked"
    }


def test_no_figures_at_all_denies_every_capped_route_and_nothing_else() -> None:
    none = policy_with({})
    decision = run(none, "internal-helpdesk", data_classification="public")
    capped = {m.id for m in none.bundle.catalog.models if m.licence.mau_cap is not None}
    assert capped == {*LLAMAS, HUNYUAN}
    assert denied_with(decision, "LICENCE_MAU_CAP") == routes(none, capped)
    assert decision.outcome == "allow"


def test_an_app_with_900m_users_at_an_org_with_400m_is_licensed_a_5_user_app_at_800m_is_not() -> None:
    small_org = run(policy_with({"2025-03": 400_000_000, **HUNYUAN_MONTH_OK}), "social-feed", monthly_active_users=900_000_000)
    assert all(cleared(small_org, m) for m in LLAMAS)
    big_org = run(policy_with({"2025-03": 800_000_000, **HUNYUAN_MONTH_OK}), "social-feed", monthly_active_users=5)
    assert not any(cleared(big_org, m) for m in LLAMAS)


def test_hunyuan_counts_the_licensee_alone_when_the_org_gives_that_figure() -> None:
    # 150M with affiliates, 90M without: the Tencent licence (§4) names no affiliates.
    with_affiliates_only = run(policy_with({"2025-03": 1, "2025-05": 150_000_000}), "internal-helpdesk")
    assert reasons_of(with_affiliates_only, HUNYUAN, "LICENCE_MAU_CAP") == {
        "Tencent Hunyuan Community License §4: licensee and affiliates MAU 150M in 2025-05, "
        "before the 2025-06-27 release, exceeds 100M"
    }
    # In the US: the licence's Territory (internal-helpdesk's profile also has the EU, excluded).
    alone = run(policy_with({"2025-03": 1, "2025-05": 150_000_000}, {"2025-05": 90_000_000}), "internal-helpdesk",
                jurisdictions=["US"])
    assert cleared(alone, HUNYUAN), codes(alone, HUNYUAN)
    assert all(cleared(alone, m) for m in LLAMAS)  # Llama counts affiliates: 1 in 2025-03


def test_near_cap_warns_from_the_orgs_newest_figure() -> None:
    # Licensed on 2025-03 (400M), but the org has 650M now: a later Llama may not be licensed.
    grown = policy_with({"2025-03": 400_000_000, "2025-05": 1, "2026-03": 650_000_000})
    decision = run(grown, "internal-helpdesk", monthly_active_users=5, jurisdictions=["US"])
    assert cleared(decision, HUNYUAN)
    for model in LLAMAS:
        assert cleared(decision, model)
        assert all("licence_mau_near_cap" in r.obligations for r in cleared(decision, model))
    assert all("licence_mau_near_cap" in r.obligations for r in cleared(decision, HUNYUAN))  # 650M ≥ 90M
    assert not any("licence_mau_near_cap" in a.obligations for a in decision.allowed
                   if a.model not in {*LLAMAS, HUNYUAN})
    shrunk = run(policy_with({"2025-03": 650_000_000, "2025-05": 1, "2026-03": 40_000_000}), "internal-helpdesk")
    assert not any("licence_mau_near_cap" in a.obligations for a in shrunk.allowed)


def test_the_reference_org_is_licensed_and_not_near_any_cap(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", data_classification="public")
    assert not denied_with(decision, "LICENCE_MAU_CAP")
    assert not any("licence_mau_near_cap" in a.obligations for a in decision.allowed)
    assert all(cleared(decision, m) for m in LLAMAS)


# --- LICENCE_TERRITORY -------------------------------------------------------------------------


TERRITORY_PREFIX = "Tencent Hunyuan Community License §1(l), §5(c): the licence does not apply in EU, GB, KR, "


@pytest.mark.parametrize(("app_id", "jurisdictions", "named"), [
    ("internal-helpdesk", ["EU"], "EU"), ("social-feed", ["GB"], "GB"), ("social-feed", ["UK"], "GB"),
    ("internal-helpdesk", ["DE"], "EU"), ("internal-helpdesk", ["FR", "IT"], "EU"), ("social-feed", ["US", "GB"], "GB"),
    ("internal-helpdesk", None, "EU"),  # no jurisdictions: the profile's (EU, US)
])
def test_hunyuan_is_not_licensed_in_the_eu_or_the_uk(policy: ActivePolicy, app_id: str,
                                                     jurisdictions: list[str] | None, named: str) -> None:
    extra = {} if jurisdictions is None else {"jurisdictions": jurisdictions}
    decision = run(policy, app_id, **extra)
    assert denied_with(decision, "LICENCE_TERRITORY") == routes(policy, {HUNYUAN})
    (message,) = reasons_of(decision, HUNYUAN, "LICENCE_TERRITORY")
    assert message == f"{TERRITORY_PREFIX}and the workload's jurisdictions include {named}"


@pytest.mark.parametrize("jurisdictions", [["KR"], ["US", "KR"]])
def test_hunyuan_is_not_licensed_in_south_korea(policy: ActivePolicy, jurisdictions: list[str]) -> None:
    decision = run_expanded(policy, "internal-helpdesk", jurisdictions)  # no reference app works in KR
    assert denied_with(decision, "LICENCE_TERRITORY") == routes(policy, {HUNYUAN})
    assert reasons_of(decision, HUNYUAN, "LICENCE_TERRITORY") == {
        f"{TERRITORY_PREFIX}and the workload's jurisdictions include KR"}


@pytest.mark.parametrize(("app_id", "jurisdictions"), [
    ("internal-helpdesk", ["US"]), ("social-feed", ["JP"]), ("social-feed", ["NO"]), ("social-feed", ["US", "CA"]),
])
def test_hunyuan_is_licensed_elsewhere(policy: ActivePolicy, app_id: str, jurisdictions: list[str]) -> None:
    decision = run(policy, app_id, jurisdictions=jurisdictions)
    assert not denied_with(decision, "LICENCE_TERRITORY")
    assert cleared(decision, HUNYUAN), codes(decision, HUNYUAN)


@pytest.mark.parametrize("jurisdictions", [["CH"], ["JP", "SG"]])
def test_hunyuan_is_licensed_outside_any_profile_too(policy: ActivePolicy, jurisdictions: list[str]) -> None:
    decision = run_expanded(policy, "internal-helpdesk", jurisdictions)
    assert not denied_with(decision, "LICENCE_TERRITORY")
    assert cleared(decision, HUNYUAN), codes(decision, HUNYUAN)


def test_a_workload_naming_no_jurisdiction_is_denied_hunyuan(policy: ActivePolicy) -> None:
    # Fail closed: nothing shows the use is inside the licence's Territory. (A request cannot
    # send [] (422) and a missing field takes the profile's: only a malformed input gets here.)
    decision = run_expanded(policy, "internal-helpdesk", [])
    assert denied_with(decision, "LICENCE_TERRITORY") == routes(policy, {HUNYUAN})
    assert reasons_of(decision, HUNYUAN, "LICENCE_TERRITORY") == {
        "Tencent Hunyuan Community License §1(l), §5(c): the licence does not apply in EU, GB, KR, "
        "and the workload names no jurisdictions, so it cannot show it is used elsewhere"
    }


def test_a_member_state_alone_is_denied_once_expanded_to_its_groups(policy: ActivePolicy) -> None:
    policy_input, decision = decide(policy, request("internal-helpdesk", jurisdictions=["DE"]))
    assert policy_input["workload"]["jurisdictions"] == ["DE", "EEA", "EU"]
    assert policy_input["requested"]["workload"]["jurisdictions"] == ["DE"]
    assert denied_with(decision, "LICENCE_TERRITORY") == routes(policy, {HUNYUAN})


# --- per-route licences: Command R+ weights vs Cohere's API ------------------------------------


def test_command_r_plus_weights_are_noncommercial_its_api_is_commercial(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", commercial=True)
    assert codes(decision, "command-r-plus") == {"self-hosted": {"LICENCE_NONCOMMERCIAL"}}
    assert reasons_of(decision, "command-r-plus", "LICENCE_NONCOMMERCIAL") == {
        "Creative Commons Attribution-NonCommercial 4.0 International §2(a)(1): "
        "the workload is commercial, and the licence does not permit commercial use"
    }
    (api,) = cleared(decision, "command-r-plus")
    assert api.deployment == "cohere-api"
    assert api.obligations == ["acceptable_use_policy:https://docs.cohere.com/docs/usage-policy"]


def test_command_r_plus_routes_carry_each_their_own_obligations(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", commercial=False)
    by_route = {a.deployment: a.obligations for a in cleared(decision, "command-r-plus")}
    assert by_route == {
        "self-hosted": ["acceptable_use_policy:https://docs.cohere.com/docs/c4ai-acceptable-use-policy",
                        "attribution:C4AI Command R+ by Cohere For AI, licensed under CC BY-NC 4.0"],
        "cohere-api": ["acceptable_use_policy:https://docs.cohere.com/docs/usage-policy"],
    }


def test_training_on_outputs_is_judged_per_route(policy: ActivePolicy) -> None:
    decision = run(policy, "internal-helpdesk", task="model_training", commercial=False)
    assert codes(decision, "command-r-plus").get("cohere-api") == {"LICENCE_OUTPUT_TRAINING"}
    assert "self-hosted" not in codes(decision, "command-r-plus")
    # Llama allows it, with the name prefix of §1.b.i; Hunyuan forbids it (§5(b)).
    for model in LLAMAS:
        assert all("name_prefix:Llama" in r.obligations for r in cleared(decision, model))
    assert reasons_of(decision, HUNYUAN, "LICENCE_OUTPUT_TRAINING") == {
        "Tencent Hunyuan Community License §5(b): task model_training, and the licence forbids training models "
        "on the outputs of Hunyuan-A13B"
    }


# --- the catalog says where every term comes from ----------------------------------------------


def test_every_licence_term_the_policy_acts_on_is_sourced(policy: ActivePolicy) -> None:
    for model in policy.bundle.catalog.models:
        licences: list[tuple[str, Any]] = [("licence", model.licence)]
        licences += [(f"deployments.{d.id}.licence", d.licence) for d in model.deployments if d.licence is not None]
        for key, licence in licences:
            for term in licence.terms():
                source = model.sources.get(f"licence.{term}") if key == "licence" else model.sources.get(key)
                assert source, f"{model.id}: {key}.{term} has no source"
                if term in {"mau_cap", "excluded_territories", "name_prefix", "acceptable_use_policy"} or key != "licence":
                    # read from the published text: its URL, or said to be an assumption
                    assert "https://" in source or source.startswith("assumption:"), (model.id, term, source)
            if licence.mau_cap is not None:
                assert licence.clauses.get("mau_cap"), f"{model.id}: the MAU cap's clause is not recorded"


def test_messages_are_deterministic() -> None:
    over = policy_with({"2025-03": 700_000_001, "2025-05": 150_000_000})
    req = request("social-feed", jurisdictions=["GB", "US"])
    first = decide(over, req, decision_id="fixed")[1].model_dump_json()
    assert "700,000,001" in first and "LICENCE_TERRITORY" in first
    for _ in range(10):
        assert decide(over, req, decision_id="fixed")[1].model_dump_json() == first
    assert decide(policy_with({"2025-03": 700_000_001, "2025-05": 150_000_000}), req, decision_id="fixed")[1].model_dump_json() == first
