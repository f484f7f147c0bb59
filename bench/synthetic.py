"""Synthetic catalogs for benchmarks: N models with a realistic spread of licences, provenances
and deployments, written as a policy bundle next to the reference Rego modules.

    python bench/synthetic.py 1000 /tmp/bundle-1000     # writes /tmp/bundle-1000/{*.rego,data/*}

The spread follows the reference catalog (FACTS.md): about 40% open Western, 30% open Chinese,
30% gated proprietary; capped, non-commercial and output-training licences in the proportions
seen there; one to three deployments per model (self-hosted for open weights, a vendor API, a
cloud); a few withheld models and a few behind an access program. Seeded: the same N gives the
same catalog.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from policy.catalog import Licence  # noqa: E402

TASKS = ["summarization", "classification", "extraction", "qa", "code_generation", "writing", "reasoning", "agentic"]
LICENCES: list[dict[str, Any]] = [
    {"name": "Apache License 2.0", "spdx": "Apache-2.0", "commercial_use": True, "mau_cap": None, "restricts_output_training": False, "prohibited_uses": [], "attribution": None},
    {"name": "MIT License", "spdx": "MIT", "commercial_use": True, "mau_cap": None, "restricts_output_training": False, "prohibited_uses": [], "attribution": None},
    {"name": "Community License (capped)", "spdx": None, "commercial_use": True, "mau_cap": {"threshold": 700_000_000, "measures": "licensee_and_affiliates", "period": "calendar_month_before_release"}, "restricts_output_training": False, "prohibited_uses": ["defense"], "attribution": "Built with the model", "clauses": {"mau_cap": "§2"}},
    {"name": "Community License (territorial)", "spdx": None, "commercial_use": True, "mau_cap": {"threshold": 100_000_000, "measures": "licensee", "period": "calendar_month_before_release"}, "excluded_territories": ["EU", "GB", "KR"], "restricts_output_training": True, "prohibited_uses": ["defense"], "attribution": None, "clauses": {"mau_cap": "§4", "excluded_territories": "§1(l)"}},
    {"name": "CC-BY-NC-4.0", "spdx": "CC-BY-NC-4.0", "commercial_use": False, "mau_cap": None, "restricts_output_training": False, "prohibited_uses": [], "attribution": "Licensed CC-BY-NC-4.0"},
]
PROPRIETARY = {"name": "Commercial API terms", "spdx": None, "commercial_use": True, "mau_cap": None, "restricts_output_training": True, "prohibited_uses": [], "attribution": None}


def model(i: int, rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    provenance = "open_western" if roll < 0.4 else "open_chinese" if roll < 0.7 else "gated_proprietary"
    origin = {"open_western": rng.choice(["US", "US", "FR", "CA"]), "open_chinese": "CN", "gated_proprietary": rng.choice(["US", "US", "CN"])}[provenance]
    open_weights = provenance != "gated_proprietary"
    tier = rng.choices(["commodity", "advanced", "frontier"], weights=[5, 4, 2 if not open_weights else 1])[0]
    strength = {"commodity": rng.randint(40, 65), "advanced": rng.randint(66, 84), "frontier": rng.randint(85, 97)}[tier]
    price_in = round({"commodity": rng.uniform(0.02, 0.3), "advanced": rng.uniform(0.2, 2.0), "frontier": rng.uniform(2.0, 25.0)}[tier], 3)
    deployments = []
    if open_weights:
        deployments.append({"id": "self-hosted", "mode": "self_hosted", "provider": "org", "operator_country": None,
                            "regions": ["eu-west-1", "us-east-1"], "zero_data_retention": True,
                            "price_in_per_mtok": round(price_in * 0.4, 4), "price_out_per_mtok": round(price_in * 0.8, 4)})
    if not open_weights or rng.random() < 0.6:
        deployments.append({"id": "vendor-api", "mode": "vendor_api", "provider": f"vendor-{i}", "operator_country": origin,
                            "regions": ["cn-north-1"] if origin == "CN" else ["us-east-1"], "zero_data_retention": rng.random() < 0.5,
                            "price_in_per_mtok": price_in, "price_out_per_mtok": round(price_in * 4, 4)})
    if rng.random() < 0.5:
        deployments.append({"id": "cloud", "mode": "cloud", "provider": "hyperscaler", "operator_country": "US",
                            "regions": ["us-east-1", "eu-central-1"], "zero_data_retention": True,
                            "price_in_per_mtok": round(price_in * 1.1, 4), "price_out_per_mtok": round(price_in * 4.4, 4)})
    gated = provenance == "gated_proprietary" and rng.random() < 0.05
    licence = rng.choice(LICENCES) if open_weights else PROPRIETARY
    # A capped licence is measured before the version's release (org.yaml has that month), and
    # each licence term the policy acts on is sourced.
    capped = licence.get("mau_cap") is not None
    sources = {"all": "assumption: synthetic benchmark catalog"}
    sources |= {f"licence.{term}": "assumption: synthetic" for term in Licence.model_validate(licence).terms()}
    sources |= {"released_on": "assumption: synthetic"} if capped else {}
    return {
        "id": f"synthetic-{i:04d}", "name": f"Synthetic {i}", "vendor": f"Vendor {i % 37}", "origin_country": origin,
        "provenance": provenance, "status": "withheld" if rng.random() < 0.03 else "available",
        "released_on": rng.choice(["2025-04-05", "2025-06-27"]) if capped else None,
        "licence": licence,
        "safety_post_training": rng.choice(["full", "partial", "minimal"] if open_weights else ["full", "full", "partial"]),
        "compliance_docs": rng.sample(["soc2", "iso_42001", "eu_ai_act_gpai"], k=rng.randint(0, 3)),
        "systemic_risk": tier == "frontier" and rng.random() < 0.7,
        "dangerous_capabilities": [{"class": "cyber_offense", "level": "high", "access_program": "glasswing", "permitted_tasks": ["security_research"]}] if gated else [],
        "capabilities": sorted(set(rng.sample(TASKS, k=rng.randint(3, len(TASKS))) + ["summarization"])),
        "quality_tier": tier, "strength": strength, "scores": {},
        "context_tokens": rng.choice([32_000, 128_000, 200_000, 1_000_000]),
        "deployments": deployments, "sources": sources,
    }


def write_bundle(models: int, dest: Path, *, seed: int = 7) -> Path:
    """A bundle with the reference Rego and apps/org, and ``models`` synthetic models."""
    if dest.exists():
        shutil.rmtree(dest)
    # gateways.yaml maps the reference catalog's routes: a synthetic catalog has none of them.
    shutil.copytree(REPO / "rego", dest, ignore=shutil.ignore_patterns("*_test.rego", "gateways.yaml"))
    rng = random.Random(seed + models)
    catalog = [model(i, rng) for i in range(models)]
    # Keep the apps' attestations valid: they name reference models.
    apps = yaml.safe_load((dest / "data" / "apps.yaml").read_text())
    for app in apps["apps"]:
        app["attestations"] = []
    (dest / "data" / "apps.yaml").write_text(yaml.safe_dump(apps, sort_keys=False))
    (dest / "data" / "models.yaml").write_text(yaml.safe_dump({"models": catalog}, sort_keys=False))
    return dest


if __name__ == "__main__":
    print(write_bundle(int(sys.argv[1]), Path(sys.argv[2])))
