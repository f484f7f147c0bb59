"""In-process decision latency for the reference catalog (no HTTP, no database).

    python bench/inprocess.py [--iterations N] [--json OUT]

Rotates a mix of realistic workloads across several apps, times ``policy.decide`` (validation
of the request excluded: it happens once at the HTTP boundary) and the engine alone, and prints
p50/p99 in microseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from policy import DecisionRequest, decide, load_policy  # noqa: E402
from policy.decision import build_input  # noqa: E402

WORKLOADS: list[dict[str, Any]] = [
    {"app_id": "internal-helpdesk", "workload": {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "minimal", "data_classification": "internal"}},
    {"app_id": "claims-summariser", "workload": {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated", "sector": "financial_services", "jurisdictions": ["EU", "US"], "data_classification": "confidential", "monthly_active_users": 1200000, "min_context_tokens": 32000, "max_price_per_mtok": 5.0}},
    {"app_id": "citizen-services", "workload": {"task": "qa", "quality_tier": "advanced", "regulatory_tier": "critical", "sector": "public_sector", "jurisdictions": ["EU"], "data_classification": "restricted"}},
    {"app_id": "security-operations", "workload": {"task": "security_research", "quality_tier": "frontier", "regulatory_tier": "standard", "data_classification": "confidential", "dangerous_capability": "cyber_defense"}},
    {"app_id": "social-feed", "workload": {"task": "classification", "quality_tier": "commodity", "regulatory_tier": "standard", "data_classification": "internal", "monthly_active_users": 800000000}},
    {"app_id": "eu-patient-records", "workload": {"task": "extraction", "quality_tier": "advanced", "regulatory_tier": "regulated", "sector": "healthcare", "jurisdictions": ["EU"], "data_classification": "restricted"}},
]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--policy-dir", type=Path, default=REPO / "rego")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    policy = load_policy(args.policy_dir)
    requests = [DecisionRequest.model_validate(w) for w in WORKLOADS]
    inputs = [build_input(policy.bundle, r, None) for r in requests]
    for r in requests * 50:  # warm-up: per-thread VM, caches
        decide(policy, r)

    full: list[float] = []
    engine: list[float] = []
    for i in range(args.iterations):
        request = requests[i % len(requests)]
        t0 = time.perf_counter()
        decide(policy, request)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        policy.engine.evaluate(inputs[i % len(inputs)])
        engine.append(time.perf_counter() - t0)

    result = {
        "catalog": {"models": len(policy.bundle.catalog.models), "routes": policy.route_count()},
        "iterations": args.iterations,
        "decide_us": {"p50": percentile(full, 0.5) * 1e6, "p99": percentile(full, 0.99) * 1e6, "mean": statistics.fmean(full) * 1e6},
        "engine_us": {"p50": percentile(engine, 0.5) * 1e6, "p99": percentile(engine, 0.99) * 1e6},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
