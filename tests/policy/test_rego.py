"""The Rego pack's own tests, run by pytest through ``policy.review.testing`` (what
``clearance policy test`` runs) and ``policy.review.check`` (what ``clearance policy check`` runs).

* Every ``test_*`` rule of ``rego/*_test.rego`` is one pytest item (id ``file::rule``); the
  whole suite is evaluated once by a regorus interpreter holding all modules and the bundle's
  data, and each item asserts its own rule was ``true``. The Rego tests bring their own small
  catalog (``with data.models as …``).
* The bundle passes ``check_bundle``: it compiles, its data validates, and the reason codes
  spelled in the Rego sources and the table in ``rego/data/reasons.yaml`` agree, both ways.
* The interpreter (Engine) and the compiled path (Program/Rvm, what the service runs) give
  byte-identical decisions on a synthetic 17-model × 3-deployment catalog.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any

import pytest
import regorus
import yaml

from policy import load_bundle
from policy.review.check import check_bundle, duplicate_test_errors
from policy.review.testing import RegoTest, TestResult, discover_tests, run_tests

REGO = Path(__file__).resolve().parents[2] / "rego"
ENTRY_POINT = "data.clearance.decision"


def _sources(tests: bool) -> list[Path]:
    return sorted(p for p in REGO.glob("*.rego") if p.name.endswith("_test.rego") == tests)


def _reasons() -> dict[str, Any]:
    return yaml.safe_load((REGO / "data" / "reasons.yaml").read_text())


_TESTS: list[RegoTest] = discover_tests(load_bundle(REGO).test_modules)


@functools.lru_cache(maxsize=1)
def _results() -> dict[tuple[str, str], TestResult]:
    return {(r.test.file, r.test.rule): r for r in run_tests(REGO).results}


@pytest.mark.parametrize("test", _TESTS, ids=[f"{t.file}::{t.rule}" for t in _TESTS])
def test_rego(test: RegoTest) -> None:
    result = _results()[(test.file, test.rule)]
    assert result.status == "PASS", f"{test.file}:{test.line}: {test.ref}: {result.status}: {result.message}"


def test_rego_tests_exist_and_are_unique() -> None:
    assert len(_TESTS) > 100
    # Two `test_x if` rules in one package are one rule (OR), not two tests: refuse that.
    sources = {p.name: p.read_text() for p in _sources(tests=True)}
    assert duplicate_test_errors(REGO, sources) == []


def test_bundle_passes_the_check_codes_and_reasons_agree() -> None:
    """Compiles, data validates, every code emitted is documented and every documented code
    is emitted, obligations likewise, categories match, codes spelled once in codes.rego."""
    errors = check_bundle(REGO)
    assert errors == [], "\n".join(str(e) for e in errors)
    for code, entry in _reasons()["codes"].items():
        assert entry["category"] == ("fitness" if code.startswith("UNSUITABLE_") else "governance"), code


# --- the two regorus paths agree ------------------------------------------------------


def synthetic_catalog(n_models: int = 17, seed: int = 7) -> dict[str, Any]:
    """A catalog that exercises every rule: n models × 3 deployments."""
    rnd = random.Random(seed)
    origins = [("open_western", "US"), ("open_chinese", "CN"), ("gated_proprietary", "US"), ("open_western", "FR")]
    tasks = ["summarization", "classification", "extraction", "qa", "code_generation", "writing", "reasoning", "agentic", "model_training"]
    models = []
    for i in range(n_models):
        provenance, origin = origins[i % 4]
        models.append({
            "id": f"model-{i:02d}", "name": f"Model {i}", "vendor": "Vendor", "origin_country": origin,
            "provenance": provenance, "status": rnd.choice(["available"] * 8 + ["withheld", "deprecated"]),
            "released_on": rnd.choice([None, "2025-01-20", "2025-04-05", "2025-06-27"]),
            "licence": synthetic_licence(rnd, i),
            "safety_post_training": rnd.choice(["full", "partial", "minimal", "none"]),
            "compliance_docs": rnd.sample(["eu_ai_act_gpai", "soc2", "iso_42001"], rnd.randint(0, 2)),
            "systemic_risk": rnd.random() > 0.6,
            "dangerous_capabilities": (
                [{"class": "cyber_offense", "level": "high", "access_program": "glasswing",
                  "permitted_tasks": ["security_research", "code_generation"]}] if i % 7 == 3 else []
            ),
            "capabilities": rnd.sample(tasks, 5), "quality_tier": ["commodity", "advanced", "frontier"][i % 3],
            "strength": rnd.randint(40, 95), "scores": {}, "context_tokens": rnd.choice([32000, 128000, 1_000_000]),
            "deployments": [
                {"id": "self-hosted", "mode": "self_hosted", "provider": "org", "operator_country": None,
                 "regions": ["eu-west-1"], "zero_data_retention": False,
                 "price_in_per_mtok": round(rnd.uniform(0.05, 1), 2), "price_out_per_mtok": round(rnd.uniform(0.1, 3), 2)},
                {"id": "vendor-api", "mode": "vendor_api", "provider": "Vendor", "operator_country": origin,
                 "regions": ["us-east-1"], "zero_data_retention": rnd.random() > 0.5,
                 "price_in_per_mtok": round(rnd.uniform(0.1, 15), 2), "price_out_per_mtok": round(rnd.uniform(0.2, 75), 2)},
                {"id": "cloud", "mode": "cloud", "provider": "Cloud", "operator_country": "US",
                 "regions": ["eu-central-1", "us-east-1"], "zero_data_retention": rnd.random() > 0.3,
                 "price_in_per_mtok": round(rnd.uniform(0.1, 15), 2), "price_out_per_mtok": round(rnd.uniform(0.2, 75), 2),
                 # Some routes under terms of their own (an API's commercial terms).
                 "licence": synthetic_licence(rnd, 100 + i) if i % 5 == 2 else None},
            ],
            "sources": {},
        })
    org = {
        "restricted_origin_countries": ["CN"],
        "restricted_origin_sectors": ["public_sector", "defense", "critical_infrastructure"],
        "restricted_data_regions": ["eu-west-1", "eu-central-1"],
        "mau_warning_ratio": 0.9,
        "critical_compliance_docs": ["soc2", "iso_42001", "eu_ai_act_gpai"],
        # 2024-12 and 2025-05 present, 2025-03 missing: caps exceeded, licensed and unmeasured.
        "licensee_mau": {"2024-12": 700_000_001, "2025-05": 950, "2026-03": 650_000_000},
        "licensee_mau_without_affiliates": {"2025-05": 1200},
    }
    return {"models": models, "apps": [], "org": org, "reasons": _reasons()}


def synthetic_licence(rnd: random.Random, i: int) -> dict[str, Any]:
    cap = rnd.choice([None, None, 700_000_000, 1000])
    return {
        "name": f"Licence {i}", "url": None, "spdx": None, "commercial_use": rnd.random() > 0.2,
        "mau_cap": None if cap is None else {
            "threshold": cap, "measures": rnd.choice(["licensee_and_affiliates", "licensee"]),
            "period": "calendar_month_before_release",
        },
        "excluded_territories": rnd.choice([[], [], ["EU", "GB", "KR"], ["EEA"]]),
        "restricts_output_training": rnd.random() > 0.5,
        "prohibited_uses": rnd.sample(["defense", "healthcare", "model_training", "legal"], rnd.randint(0, 2)),
        "attribution": rnd.choice([None, f"Built with Model {i}"]),
        "name_prefix": rnd.choice([None, f"Model{i}"]),
        "acceptable_use_policy": rnd.choice([None, f"https://example.com/aup/{i}"]),
        "clauses": rnd.choice([{}, {"mau_cap": "§2", "excluded_territories": "§1(l)", "commercial_use": "§1.a"}]),
    }


def synthetic_input(seed: int) -> dict[str, Any]:
    rnd = random.Random(seed)
    return {
        "app": {
            "id": "app-x", "owner": "tests", "description": None,
            "programs": rnd.choice([[], ["glasswing"]]),
            "capability_approvals": rnd.choice([[], ["cyber_defense"]]),
            "attestations": [{"model": "model-01", "regulatory_tier": "regulated", "evidence": None}],
        },
        "workload": {
            "task": rnd.choice(["summarization", "qa", "code_generation", "model_training", "security_research"]),
            "quality_tier": rnd.choice(["commodity", "advanced", "frontier"]),
            "regulatory_tier": rnd.choice(["minimal", "standard", "regulated", "critical"]),
            "sector": rnd.choice(["general", "defense", "healthcare", "financial_services"]),
            "jurisdictions": rnd.choice([["EU", "US"], ["US"], [], ["DE", "EU", "EEA"], ["KR"], ["NO", "EEA"]]),
            "data_classification": rnd.choice(["public", "internal", "confidential", "restricted"]),
            "dangerous_capability": rnd.choice(["none", "none", "cyber_defense", "cyber_offense"]),
            "commercial": rnd.random() > 0.3,
            "monthly_active_users": rnd.choice([0, 899, 900, 1000, 1001, 1_200_000, 800_000_000]),
            "min_context_tokens": rnd.choice([0, 32000, 200000]),
            "max_price_per_mtok": rnd.choice([None, 1.0, 5.0, 20.0]),
            "deployment_modes": rnd.choice([["self_hosted", "vendor_api", "cloud"], ["self_hosted"], ["vendor_api", "cloud"]]),
        },
        "caller": {"key_id": "k", "role": "app"},
    }


def test_engine_and_compiled_program_give_identical_decisions() -> None:
    """The compiled program on the data the engine passes (with data.derived, the catalog-only
    tables), the interpreter on the same, and the interpreter on the bundle's data alone (the
    tables computed in Rego, as rego tests see them): one decision."""
    from policy.engine import with_derived

    modules = [(p.name, p.read_text()) for p in _sources(tests=False)]
    data_json = json.dumps(with_derived([synthetic_catalog()], modules)[0])
    assert "derived" in json.loads(data_json)
    engine = regorus.Engine()
    plain = regorus.Engine()
    for name, text in modules:
        engine.add_policy(name, text)
        plain.add_policy(name, text)
    engine.add_data_json(data_json)
    plain.add_data_json(json.dumps(synthetic_catalog()))
    program = regorus.Program.compile_from_modules(data_json, modules, [ENTRY_POINT])
    vm = regorus.Rvm()
    vm.load_program(program)
    vm.set_data_json(data_json)
    outcomes, seen = set(), set()
    for seed in range(60):
        policy_input = json.dumps(synthetic_input(seed))
        engine.set_input_json(policy_input)
        vm.set_input_json(policy_input)
        plain.set_input_json(policy_input)
        interpreted = json.loads(engine.eval_rule_as_json(ENTRY_POINT))
        assert json.loads(plain.eval_rule_as_json(ENTRY_POINT)) == interpreted, f"seed {seed}"
        compiled = json.loads(vm.execute_entry_point(ENTRY_POINT))
        assert compiled == interpreted, f"seed {seed}"
        assert "<undefined>" not in json.dumps(compiled), f"seed {seed}"
        assert len(compiled["allowed"]) + len(compiled["denied"]) == 17 * 3
        outcomes.add(compiled["outcome"])
        seen |= {r["code"] for d in compiled["denied"] for r in d["reasons"]}
        seen |= {o.split(":")[0] for a in compiled["allowed"] for o in a["obligations"]}
    assert outcomes == {"allow", "deny"}
    # The licence terms were exercised on both paths.
    assert {"LICENCE_MAU_CAP", "LICENCE_TERRITORY", "LICENCE_NONCOMMERCIAL", "licence_mau_near_cap",
            "name_prefix", "acceptable_use_policy", "attribution"} <= seen
