"""In-process costs (no HTTP, no database): decision latency by catalog size, and entry signing.

    python bench/inprocess.py [--iterations N] [--sizes 100,1000] [--json OUT]

For the reference catalog and synthetic catalogs (bench/synthetic.py) it times, over a rotating
mix of realistic workloads across six apps:
- ``engine``: one uncached evaluation by the engine (what a never-seen input costs);
- ``decide``: the service's hot path for a request up to the audit writer (``api/decider.py``:
  the policy input with the app's profile applied and its evaluation, both memoised per
  request, the canonical encoding, the entry's fields), i.e. what a repeated workload costs;
and for one recorded entry: RFC 8785 encoding of the whole body, the spliced encoding the
service uses, SHA-256 and the Ed25519 signature.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.decider import Decider, PolicyHolder  # noqa: E402
from api.metrics import Metrics  # noqa: E402
from audit.canonical import canonical_bytes, entry_hash, entry_signing_input  # noqa: E402
from audit.keys import SigningKey  # noqa: E402
from bench.synthetic import write_bundle  # noqa: E402
from policy import ActivePolicy, Caller, DecisionRequest, load_policy  # noqa: E402

WORKLOADS: list[dict[str, Any]] = [
    {"app_id": "internal-helpdesk", "workload": {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "minimal", "data_classification": "internal"}},
    {"app_id": "claims-summariser", "workload": {"task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated", "sector": "financial_services", "jurisdictions": ["EU", "US"], "data_classification": "confidential", "monthly_active_users": 1200000, "min_context_tokens": 32000, "max_price_per_mtok": 5.0}},
    {"app_id": "citizen-services", "workload": {"task": "qa", "quality_tier": "advanced", "regulatory_tier": "critical", "sector": "public_sector", "jurisdictions": ["EU"], "data_classification": "restricted"}},
    {"app_id": "security-operations", "workload": {"task": "security_research", "quality_tier": "frontier", "regulatory_tier": "standard", "data_classification": "confidential", "dangerous_capability": "cyber_defense"}},
    {"app_id": "social-feed", "workload": {"task": "classification", "quality_tier": "commodity", "regulatory_tier": "standard", "data_classification": "internal", "monthly_active_users": 800000000}},
    {"app_id": "eu-patient-records", "workload": {"task": "extraction", "quality_tier": "advanced", "regulatory_tier": "regulated", "sector": "healthcare", "jurisdictions": ["EU"], "data_classification": "restricted"}},
]


def decider_for(policy: ActivePolicy) -> Decider:
    """The service's decider over ``policy``, for measuring its path up to the audit writer."""
    return Decider(policy=PolicyHolder(policy), shadow=None, writer=None, metrics=Metrics.create())  # type: ignore[arg-type]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6

    return {"p50": at(0.5), "p99": at(0.99), "mean": statistics.fmean(ordered) * 1e6, "n": len(ordered)}


def timed(fn: Callable[[int], object], iterations: int) -> list[float]:
    samples = []
    for i in range(iterations):
        t0 = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t0)
    return samples


def measure_catalog(policy: ActivePolicy, iterations: int) -> dict[str, Any]:
    requests = [DecisionRequest.model_validate(w) for w in WORKLOADS]
    caller = Caller(key_id="bench", role="app")
    inputs = [policy.input_for(r, caller) for r in requests]
    engine = policy.engine
    for policy_input in inputs * 3:  # warm-up: per-thread VM
        engine.evaluate(policy_input)
    cold = timed(lambda i: engine.evaluate(inputs[i % len(inputs)]), iterations)

    decider = decider_for(policy)

    def hot(i: int) -> None:
        request = requests[i % len(requests)]
        decider.entry(policy, request, caller, decider.evaluate(policy, request, caller))

    for i in range(len(requests)):
        hot(i)
    warm = timed(hot, max(iterations, 2000))
    routes = policy.route_count()
    engine_us = percentiles(cold)
    return {
        "models": len(policy.bundle.catalog.models),
        "routes": routes,
        "engine_uncached_us": engine_us,
        "engine_us_per_route_p50": engine_us["p50"] / routes,
        "decide_hot_path_us": percentiles(warm),
    }


def measure_signing(policy: ActivePolicy, iterations: int) -> dict[str, Any]:
    decider = decider_for(policy)
    request = DecisionRequest.model_validate(WORKLOADS[1])
    caller = Caller(key_id="bench", role="app")
    fields, _ = decider.entry(policy, request, caller, decider.evaluate(policy, request, caller))
    body_spliced = {**fields, "seq": 12345, "recorded_at": "2026-11-21T02:00:00.000000Z", "key_id": "k" * 32,
                    "prev_hash": "0" * 64}
    body_plain = {**body_spliced, "input": fields["input"].value, "result": fields["result"].value}
    data = canonical_bytes(body_plain)
    assert canonical_bytes(body_spliced) == data
    key = SigningKey.generate()
    digest = entry_hash(bytes(32), data)
    return {
        "body_bytes": len(data),
        "rfc8785_whole_body_us": percentiles(timed(lambda _: canonical_bytes(body_plain), iterations)),
        "spliced_body_us": percentiles(timed(lambda _: canonical_bytes(body_spliced), iterations)),
        "sha256_us": percentiles(timed(lambda _: entry_hash(bytes(32), data), iterations)),
        "ed25519_sign_us": percentiles(timed(lambda _: key.sign(entry_signing_input(digest)), iterations)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--sizes", default="100,1000", help="synthetic catalog sizes (models)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    reference = load_policy(REPO / "rego")
    catalogs = {"reference": measure_catalog(reference, args.iterations)}
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in args.sizes.split(",") if s]:
            synthetic = load_policy(write_bundle(size, Path(tmp) / f"bundle-{size}"))
            # Large catalogs leave the compiled VM for the interpreter: fewer iterations.
            catalogs[f"synthetic-{size}"] = measure_catalog(synthetic, max(20, args.iterations * 17 // size // 4))
    result = {"catalogs": catalogs, "entry": measure_signing(reference, args.iterations)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
