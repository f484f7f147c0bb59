"""Impact analysis throughput: replays per second, in-process (no database, no HTTP).

    python bench/impact_bench.py                      # the three runs below, a table and JSON
    python bench/impact_bench.py --json OUT.json
    python bench/impact_bench.py --sample-out tests/policy/review/data/decisions-sample.jsonl --sample-size 400

Base is the reference pack (``rego/``); head is a copy with the Llama 4 licence MAU cap lowered
to 1M (so a realistic share of decisions changes). Synthetic traffic: per-app workloads drawn
the way those apps ask (sectors, tiers, data classes, MAU), written as JSONL (request bodies, or
audit export lines) and replayed through ``policy.review.impact.analyse`` exactly as
``clearance policy impact --inputs`` does (parsing and validation included; bundle compilation
excluded from the rate and reported apart). Runs:

1. ``distinct, 1 process``: request bodies, every one a different workload — both bundles
   decide each: the engine's raw pair rate on one core;
2. ``distinct, pool``: the same kind of input, large enough for the process pool (one per core);
3. ``trail, distinct``: audit export lines recorded under the base revision, every workload
   different — the recorded answer stands for the base's, so only the head decides;
4. ``trail, production-like``: many recorded decisions over fewer distinct workloads (Zipf:
   apps repeat their few shapes), where the cache of judged workloads pays too — what a replay
   of a real trail looks like.

Besides wall-clock replays/s it reports the CPU seconds spent (this process and the pool's) and
replays per CPU-second, with the load average before each run: on a shared machine the wall
clock says how busy the neighbours were, the CPU figure what the analysis itself costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from policy.review.impact import analyse  # noqa: E402
from policy.review.replay import read_jsonl  # noqa: E402

# How each reference app asks: (sector choices, tasks, tiers, data classes, MAU range, extras),
# within each app's profile in rego/data/apps.yaml.
PROFILES: dict[str, dict[str, Any]] = {
    "internal-helpdesk": {"sector": ["general"], "task": ["summarization", "qa", "writing", "classification"],
                          "tier": ["minimal", "standard"], "data": ["internal", "confidential"], "mau": (1_000, 60_000)},
    "claims-summariser": {"sector": ["financial_services", "insurance"], "task": ["summarization", "extraction"],
                          "tier": ["regulated"], "data": ["confidential"], "mau": (200_000, 2_000_000),
                          "jurisdictions": [["EU", "US"], ["US"]]},
    "citizen-services": {"sector": ["public_sector"], "task": ["qa", "writing"], "tier": ["standard", "critical"],
                         "data": ["internal", "restricted"], "mau": (10_000, 5_000_000), "jurisdictions": [["EU"]]},
    "security-operations": {"sector": ["general"], "task": ["security_research", "code_generation"],
                            "tier": ["standard"], "data": ["confidential"], "mau": (50, 500),
                            "dangerous": ["cyber_defense", "none"]},
    "social-feed": {"sector": ["general"], "task": ["summarization", "classification", "writing"],
                    "tier": ["minimal", "standard"], "data": ["public", "internal"], "mau": (600_000_000, 1_200_000_000)},
    "eu-patient-records": {"sector": ["healthcare"], "task": ["summarization", "extraction"], "tier": ["regulated"],
                           "data": ["restricted"], "mau": (1_000, 50_000), "jurisdictions": [["EU"]]},
    "code-assistant": {"sector": ["general"], "task": ["code_generation", "agentic", "reasoning"],
                       "tier": ["minimal", "standard"], "data": ["internal", "confidential"], "mau": (500, 20_000)},
    "desktop-automation": {"sector": ["general"], "task": ["gui_automation", "agentic"], "tier": ["standard"],
                           "data": ["internal"], "mau": (100, 2_000), "dangerous": ["autonomous_gui"]},
}


def synthetic_requests(n: int, *, seed: int) -> list[dict[str, Any]]:
    """``n`` decision requests across the reference apps (duplicates possible but rare)."""
    rnd = random.Random(seed)
    apps = sorted(PROFILES)
    out = []
    for _ in range(n):
        app = rnd.choice(apps)
        p = PROFILES[app]
        low, high = p["mau"]
        workload: dict[str, Any] = {
            "task": rnd.choice(p["task"]),
            "quality_tier": rnd.choice(["commodity", "commodity", "advanced", "frontier"]),
            "regulatory_tier": rnd.choice(p["tier"]),
            "sector": rnd.choice(p["sector"]),
            "jurisdictions": rnd.choice(p.get("jurisdictions", [["US"], ["EU", "US"], None])),
            "data_classification": rnd.choice(p["data"]),
            "dangerous_capability": rnd.choice(p.get("dangerous", ["none"])),
            "monthly_active_users": rnd.randint(low, high),
            "min_context_tokens": rnd.choice([0, 8_000, 32_000, 128_000]),
            "max_price_per_mtok": rnd.choice([None, None, 2.0, 5.0, 20.0]),
            "deployment_modes": rnd.choice([["self_hosted", "vendor_api", "cloud"], ["self_hosted"],
                                            ["vendor_api", "cloud"]]),
        }
        if workload["jurisdictions"] is None:  # none sent: the app's profile applies
            del workload["jurisdictions"]
        out.append({"app_id": app, "workload": workload, "context": {"request_id": f"bench-{len(out)}"}})
    return out


def production_like(n: int, distinct: int, *, seed: int) -> list[dict[str, Any]]:
    """``n`` decisions over ``distinct`` workloads, Zipf-weighted (s=1.1)."""
    shapes = synthetic_requests(distinct, seed=seed)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(distinct)]
    return random.Random(seed + 1).choices(shapes, weights=weights, k=n)


def write_jsonl(path: Path, requests: list[dict[str, Any]], *, ids: bool = True) -> Path:
    """Request bodies, one per line; with ``ids``, each with a made-up decision id beside it
    (as an export of recorded decisions would have)."""
    with path.open("wb") as handle:
        for i, request in enumerate(requests):
            line = {k: v for k, v in request.items() if k != "context"}
            if ids:
                line["decision_id"] = f"00000000-0000-7000-8000-{i:012d}"
            handle.write(orjson.dumps(line) + b"\n")
    return path


def write_recorded(path: Path, requests: list[dict[str, Any]], base: Path) -> Path:
    """The requests as the audit trail holds them after the base decided them (export lines
    ``{"decision_id", "input", "result"}``): what replays of the trail look like when the base
    is the revision in service. Identical requests are decided once."""
    from policy import DecisionRequest, decide, load_policy

    policy = load_policy(base)
    decided: dict[bytes, tuple[dict[str, Any], dict[str, Any]]] = {}
    with path.open("wb") as handle:
        for i, request in enumerate(requests):
            key = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
            if key not in decided:
                policy_input, decision = decide(policy, DecisionRequest.model_validate(request))
                decided[key] = (policy_input, decision.model_dump(mode="json"))
            policy_input, result = decided[key]
            decision_id = f"00000000-0000-7000-8000-{i:012d}"
            handle.write(orjson.dumps({"decision_id": decision_id, "input": policy_input,
                                       "result": {**result, "decision_id": decision_id}}) + b"\n")
    return path


def _cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the pool's processes)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def run(name: str, base: Path, head: Path, inputs: Path, *, workers: int) -> dict[str, Any]:
    load = os.getloadavg()[0]
    cpu = _cpu_seconds()
    report = analyse(base, head, read_jsonl(inputs), base_ref="reference", head_ref="lowered cap",
                     workers=workers).to_dict()
    cpu = _cpu_seconds() - cpu
    timing = report["timing"]
    return {
        "run": name, "replayed": report["replayed"], "distinct": report["distinct_workloads"],
        "changed": report["changed"], "breaking": report["breaking"], "workers": timing["workers"],
        "replay_seconds": round(timing["seconds"] - timing["build_seconds"], 3),
        "build_seconds": timing["build_seconds"], "replays_per_second": timing["replays_per_second"],
        # CPU spent (bundle builds included, in every process): what the rate would be on idle
        # cores, whatever else the machine was doing.
        "cpu_seconds": round(cpu, 3),
        "replays_per_cpu_second": round(report["replayed"] / cpu, 1) if cpu else None,
        "load_average_before": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distinct", type=int, default=3_000, help="replays of run 1 (all distinct)")
    parser.add_argument("--pooled", type=int, default=20_000, help="replays of run 2 (all distinct, pool)")
    parser.add_argument("--recorded", type=int, default=8_000, help="replays of run 3 (all distinct, recorded)")
    parser.add_argument("--production", type=int, default=100_000, help="replays of run 4")
    parser.add_argument("--production-distinct", type=int, default=3_000, help="distinct workloads in run 4")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--sample-out", type=Path, help="only write a JSONL sample of synthetic requests here")
    parser.add_argument("--sample-size", type=int, default=400)
    args = parser.parse_args()

    if args.sample_out:
        write_jsonl(args.sample_out, synthetic_requests(args.sample_size, seed=2026), ids=False)
        print(f"wrote {args.sample_size} requests to {args.sample_out}")
        return

    with tempfile.TemporaryDirectory(prefix="impact-bench-") as scratch:
        tmp = Path(scratch)
        head = tmp / "head"
        shutil.copytree(REPO / "rego", head)
        models = head / "data" / "models.yaml"
        models.write_text(models.read_text().replace("threshold: 700000000", "threshold: 1000000"))
        base = REPO / "rego"
        results = [
            run("distinct, 1 process", base, head, write_jsonl(tmp / "a.jsonl", synthetic_requests(args.distinct, seed=1)),
                workers=1),
            run("distinct, pool", base, head, write_jsonl(tmp / "b.jsonl", synthetic_requests(args.pooled, seed=2)),
                workers=0),
            run("trail, distinct", base, head,
                write_recorded(tmp / "c.jsonl", synthetic_requests(args.recorded, seed=4), base), workers=0),
            run("trail, production-like", base, head,
                write_recorded(tmp / "d.jsonl", production_like(args.production, args.production_distinct, seed=3),
                               base), workers=0),
        ]
    print(f"{'run':<24}{'replayed':>10}{'distinct':>10}{'changed':>9}{'procs':>7}{'seconds':>9}{'replays/s':>11}"
          f"{'cpu s':>8}{'replays/cpu-s':>15}{'load':>6}")
    for r in results:
        print(f"{r['run']:<24}{r['replayed']:>10,}{r['distinct']:>10,}{r['changed']:>9,}{r['workers']:>7}"
              f"{r['replay_seconds']:>9.2f}{r['replays_per_second']:>11,.0f}{r['cpu_seconds']:>8.1f}"
              f"{r['replays_per_cpu_second'] or 0:>15,.0f}{r['load_average_before']:>6.1f}")
    document = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}, "results": results}
    print(json.dumps(document, indent=2))
    if args.json:
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
