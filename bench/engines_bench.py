"""Per-decision latency: embedded regorus (compiled RVM, interpreter) against OPA over HTTP.

Each engine evaluates the same realistic policy inputs (tests/engines/workloads.py: every app,
edge numbers) one after another on one thread, after a warm-up; the engines are called
directly, without the per-bundle decision cache of ``ActivePolicy``. Prints a table and JSON.

    python bench/engines_bench.py                         # OPA stand-in (see below)
    python bench/engines_bench.py --decisions 2000
    CLEARANCE_BENCH_OPA_URL=http://127.0.0.1:8181 python bench/engines_bench.py --replace

With ``CLEARANCE_BENCH_OPA_URL`` (or ``--opa-url``) the OPA rows are a real OPA server
(``--replace`` lets the bench take over an OPA holding another Clearance bundle). Without it
they are measured against tests/engines/replay.py, a Python ``http.server`` on 127.0.0.1 that
answers every decision query with the same canned, full-size decision: those rows are the
HTTP round trip plus the adapter's work (JSON encoding of the input, opa-python-client and
requests, JSON decoding of the answer) plus the stand-in's own Python request handling,
**not OPA's evaluation**. The ``raw HTTP`` row sends the same body with a bare
``requests.Session`` to separate the adapter from the transport.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

import orjson  # noqa: E402
import regorus  # noqa: E402
import requests  # noqa: E402

from policy import Bundle, RegorusEngine, load_bundle  # noqa: E402
from policy.engine import ENTRY_POINT  # noqa: E402
from policy.opa import OpaEngine, guard_package  # noqa: E402
from tests.engines.replay import Reply, install_routes, replay_server  # noqa: E402
from tests.engines.workloads import policy_inputs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def measure(evaluate: Callable[[dict[str, Any]], Any], inputs: list[dict[str, Any]], n: int, warmup: int) -> dict[str, float]:
    for i in range(warmup):
        evaluate(inputs[i % len(inputs)])
    samples = []
    for i in range(n):
        started = time.perf_counter_ns()
        evaluate(inputs[i % len(inputs)])
        samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    return {
        "decisions": n,
        "mean_ms": round(statistics.fmean(samples), 3),
        "p50_ms": round(samples[n // 2], 3),
        "p90_ms": round(samples[int(n * 0.9)], 3),
        "p99_ms": round(samples[min(n - 1, int(n * 0.99))], 3),
        "max_ms": round(samples[-1], 3),
    }


def interpreter_evaluate(bundle: Bundle) -> Callable[[dict[str, Any]], Any]:
    """regorus' interpreter as policy/engine.py uses it past the RVM's instruction limit."""
    engine = regorus.Engine()
    for name, text in sorted(bundle.modules.items()):
        engine.add_policy(name, text)
    engine.add_data_json(orjson.dumps(bundle.data_document()).decode())

    def evaluate(policy_input: dict[str, Any]) -> Any:
        engine.set_input_json(orjson.dumps(policy_input).decode())
        return orjson.loads(engine.eval_rule_as_json(ENTRY_POINT))

    return evaluate


def raw_http_evaluate(url: str, path: str) -> Callable[[dict[str, Any]], Any]:
    session = requests.Session()

    def evaluate(policy_input: dict[str, Any]) -> Any:
        response = session.post(f"{url}{path}?strict-builtin-errors=true", json={"input": policy_input}, timeout=5)
        response.raise_for_status()
        return response.json()["result"]

    return evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=1000, help="decisions timed per engine")
    parser.add_argument("--inputs", type=int, default=200, help="distinct policy inputs, cycled")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--opa-url", default=os.environ.get("CLEARANCE_BENCH_OPA_URL"))
    parser.add_argument("--replace", action="store_true", help="take over an OPA holding another Clearance bundle")
    args = parser.parse_args()

    bundle = load_bundle(REPO / "rego")
    regorus_engine = RegorusEngine(bundle)
    inputs = policy_inputs(bundle, args.inputs, seed=5)
    results: dict[str, Any] = {
        "regorus RVM (embedded, default)": measure(regorus_engine.evaluate, inputs, args.decisions, args.warmup),
        "regorus interpreter (embedded)": measure(interpreter_evaluate(bundle), inputs, args.decisions, args.warmup),
    }
    decision_path = f"/v1/data/{guard_package(bundle.revision).replace('.', '/')}/decision"
    canned = regorus_engine.evaluate(inputs[0])
    if args.opa_url:
        opa_label = f"OPA server at {args.opa_url}"
        engine = OpaEngine(bundle, url=args.opa_url, replace=args.replace)
        results[f"{opa_label}: OpaEngine"] = measure(engine.evaluate, inputs, args.decisions, args.warmup)
        results[f"{opa_label}: raw HTTP"] = measure(raw_http_evaluate(args.opa_url, decision_path), inputs,
                                                    args.decisions, args.warmup)
    else:
        with replay_server() as server:
            install_routes(server)
            server.route("POST", decision_path, Reply(200, {"result": canned}))
            engine = OpaEngine(bundle, url=server.url)
            label = "OPA stand-in (HTTP + adapter, NOT OPA evaluation)"
            results[f"{label}: OpaEngine"] = measure(engine.evaluate, inputs, args.decisions, args.warmup)
            results[f"{label}: raw HTTP"] = measure(raw_http_evaluate(server.url, decision_path), inputs,
                                                    args.decisions, args.warmup)

    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "bundle": {"revision": bundle.revision, "routes": sum(len(m.deployments) for m in bundle.catalog.models)},
        "sizes": {"input_bytes_mean": round(statistics.fmean(len(orjson.dumps(i)) for i in inputs)),
                  "decision_bytes_example": len(orjson.dumps(canned))},
        "engines": results,
    }
    width = max(len(k) for k in results)
    print(f"{'engine':<{width}}  {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8}")
    for name, r in results.items():
        print(f"{name:<{width}}  {r['p50_ms']:>8} {r['p90_ms']:>8} {r['p99_ms']:>8} {r['mean_ms']:>8} {r['max_ms']:>8}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
