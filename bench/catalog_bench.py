"""First evaluation of an input by catalog size: the compiled engine in parts against the whole
catalog at once (the RVM until its instruction limit, then the interpreter).

    python bench/catalog_bench.py                          # 17 (reference), 35, 100, 300, 1,000 models
    python bench/catalog_bench.py --sizes 35,1000 --repeat 3 --json OUT.json
    python bench/catalog_bench.py --sizes 100,1000 --also-part-models 24   # and in parts of 24, alternated

For each catalog (the reference one, and bench/synthetic.py catalogs of N models) it times
``RegorusEngine.evaluate`` over the six realistic workloads of bench/inprocess.py, uncached
(the engine is called directly), in two configurations built from the same bundle in the same
process, interleaved run by run so that the shared machine's load hits both alike:

- ``parts``: the default (policy/engine.py: parts of at most PART_MODELS models, merged);
- ``whole``: the whole catalog in one evaluation (what the engine did before parts), which
  past ~35 models falls back to the interpreter.

It also counts the evaluations that hit the RVM's instruction limit (from the engine's log).
Per-route figures are the median over runs of each run's p50 ÷ routes.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.inprocess import WORKLOADS  # noqa: E402
from bench.synthetic import write_bundle  # noqa: E402
from policy import Caller, DecisionRequest, load_policy  # noqa: E402
from policy.engine import RegorusEngine  # noqa: E402


class _LimitCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.hits = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "instruction limit" in record.getMessage():
            self.hits += 1


def p50_us(engine: RegorusEngine, inputs: list[dict[str, Any]], n: int) -> tuple[float, float]:
    """(wall, thread CPU) p50 in µs: the CPU figure leaves out the time the thread waited for a core."""
    wall, cpu = [], []
    for i in range(n):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        engine.evaluate(inputs[i % len(inputs)])
        cpu.append((time.thread_time_ns() - c0) / 1e3)
        wall.append((time.perf_counter_ns() - w0) / 1e3)
    return statistics.median(wall), statistics.median(cpu)


def measure(bundle_dir: Path, label: str, repeat: int, budget_s: float, also: int | None = None) -> dict[str, Any]:
    policy = load_policy(bundle_dir)
    caller = Caller(key_id="bench", role="app")
    inputs = [policy.input_for(DecisionRequest.model_validate(w), caller) for w in WORKLOADS]
    routes = policy.route_count()
    counter = _LimitCounter()
    logging.getLogger("clearance.policy").addHandler(counter)
    logging.getLogger("clearance.policy").setLevel(logging.INFO)
    engines = {"parts": RegorusEngine(policy.bundle), "whole": RegorusEngine(policy.bundle, part_models=10**9)}
    if also:
        engines[f"parts of {also}"] = RegorusEngine(policy.bundle, part_models=also)
    results: dict[str, Any] = {}
    for name, engine in engines.items():
        for policy_input in inputs:  # warm-up: the per-thread VMs, and a sanity check
            assert engine.evaluate(policy_input) == engines["whole"].evaluate(policy_input)
        started = time.perf_counter()
        engine.evaluate(inputs[0])
        once = time.perf_counter() - started
        results[name] = {"n": max(12, min(2000, int(budget_s / max(once, 1e-6)))), "p50_us": [], "limit_hits": 0}
    for _ in range(repeat):
        for name, engine in engines.items():
            counter.hits = 0
            results[name]["p50_us"].append(p50_us(engine, inputs, results[name]["n"]))
            results[name]["limit_hits"] += counter.hits
    logging.getLogger("clearance.policy").removeHandler(counter)
    out: dict[str, Any] = {"catalog": label, "models": len(policy.bundle.catalog.models), "routes": routes,
                           "part_count": engines["parts"].parts,
                           "part_counts": {name: engine.parts for name, engine in engines.items()}}
    for name, r in results.items():
        p50 = statistics.median(x[0] for x in r["p50_us"])
        cpu = statistics.median(x[1] for x in r["p50_us"])
        out[name] = {"p50_us": round(p50, 1), "per_route_us": round(p50 / routes, 2),
                     "cpu_p50_us": round(cpu, 1), "cpu_per_route_us": round(cpu / routes, 2),
                     "runs_wall_cpu_p50_us": [[round(x, 1) for x in run] for run in r["p50_us"]],
                     "evaluations_per_run": r["n"], "instruction_limit_hits": r["limit_hits"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="35,100,300,1000", help="synthetic catalog sizes (models)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (interleaved)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per run and configuration, about")
    parser.add_argument("--also-part-models", type=int, metavar="N",
                        help="a third configuration, in parts of N models (e.g. 24, the size of a pack not assembled)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = [measure(REPO / "rego", "reference", args.repeat, args.budget, args.also_part_models)]
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in args.sizes.split(",") if s]:
            rows.append(measure(write_bundle(size, Path(tmp) / f"b{size}"), f"synthetic-{size}", args.repeat,
                                args.budget, args.also_part_models))
    print("p50 per evaluation, wall and thread CPU; per route: CPU p50 / routes; limit: evaluations that hit the "
          "RVM's instruction limit")
    names = ["parts", "whole"] + ([f"parts of {args.also_part_models}"] if args.also_part_models else [])
    header = "".join(f" | {name[:11] + ' wall':>16}{'cpu':>10}{'cpu/route':>10}{'limit':>6}" for name in names)
    print(f"{'catalog':<16}{'models':>7}{'routes':>7}{'parts':>6}{header}")
    for r in rows:
        cells = ""
        for name in names:
            x = r[name]
            cells += (f" | {x['p50_us']:>14.0f}µs{x['cpu_p50_us']:>8.0f}µs{x['cpu_per_route_us']:>10.1f}"
                      f"{x['instruction_limit_hits']:>6}")
        print(f"{r['catalog']:<16}{r['models']:>7}{r['routes']:>7}{r['part_count']:>6}{cells}")
    text = json.dumps({"catalogs": rows}, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
