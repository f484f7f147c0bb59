"""How long `clearance policy check` takes, and how many workloads its invariant search evaluates.

    python bench/invariants_bench.py [--examples 1000] [--json OUT]

Times, on the reference pack: the static check (``check_bundle``), the Rego tests, and the
invariant search (full, as ``clearance policy check`` runs it; quick, as a reload runs it),
with the number of distinct policy inputs evaluated by the engine in each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from policy import load_policy  # noqa: E402
from policy.review.check import check_bundle  # noqa: E402
from policy.review.invariants import RELOAD_EXAMPLES, search  # noqa: E402
from policy.review.testing import run_bundle_tests  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = REPO / "rego"
    out: dict[str, object] = {"load_average_before": os.getloadavg()}
    t0 = time.perf_counter()
    assert not check_bundle(root)
    t1 = time.perf_counter()
    policy = load_policy(root)
    tests = run_bundle_tests(policy.bundle)
    t2 = time.perf_counter()
    full = search(policy, examples=args.examples)
    t3 = time.perf_counter()
    quick = search(load_policy(root), examples=RELOAD_EXAMPLES, quick=True)
    out.update({
        "static_check_s": round(t1 - t0, 2),
        "rego_tests": len(tests), "rego_tests_s": round(t2 - t1, 2),
        "search_full": {**{k: v for k, v in full.to_dict().items() if k != "declared"}, "seconds": round(t3 - t2, 2)},
        "check_total_s": round(t3 - t0, 2),
        "search_quick_reload": {k: v for k, v in quick.to_dict().items() if k != "declared"},
        "per_evaluation_ms": round(1000 * full.seconds / max(full.evaluated, 1), 2),
    })
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
