"""CPU per audited decision on the event loop: the service's decide path without HTTP.

    python bench/decide_cpu.py [--decisions 3000] [--concurrency 1] [--repeat 3]
    python bench/decide_cpu.py --steps     # each step of one decision alone, no database

A scratch database at the newest schema, a checkpoint file, the reference policy and a real
``AuditWriter``; on one asyncio loop, ``--concurrency`` tasks each do what ``POST /v1/decisions``
does after authentication, one request after the other: read the body (``policy.strict_json``
and ``DecisionRequest``), ``Decider.decide_json`` (the memoised evaluation, the entry, the
writer's submission, the receipt, the response bytes; ``decide`` and orjson in a tree that has
no ``decide_json``, for paired runs against an older commit). The six workloads of
bench/inprocess.py rotate, so after the first six every evaluation is a cache hit, as for the
apps of a running service. Reports the CPU of the loop's thread per decision (what bounds one
worker's event loop), the rest of the process (the writer thread), PostgreSQL's, and the
latency. CPU time, not wall time: a shared machine moves it little.

``--steps`` times each step of one decision from the cache (the claims-summariser workload)
alone, best of five runs of thread CPU time: the body, the cache lookup, the entry's fields,
the three steps of ``AuditWriter.append_async`` before the hand-off, and the answer's bytes
(with a receipt of the shape the writer returns).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from api.decider import Decider, PolicyHolder  # noqa: E402
from api.metrics import Metrics  # noqa: E402
from audit import AuditStore, AuditWriter, SigningKey, upgrade  # noqa: E402
from audit.canonical import plain  # noqa: E402
from audit.chain import encode_members  # noqa: E402
from audit.checkpoints import CheckpointPolicy  # noqa: E402
from audit.entry import draft_leaf, prepare_fields  # noqa: E402
from bench.append_cost import DEFAULT_URL, postgres_cpu_seconds, scratch_database  # noqa: E402
from bench.inprocess import WORKLOADS  # noqa: E402
from policy import Caller, DecisionRequest, load_policy, strict_json  # noqa: E402

BODIES = [json.dumps(w).encode() for w in WORKLOADS]


async def _run(decider: Decider, *, decisions: int, concurrency: int) -> tuple[list[float], int]:
    caller = Caller(key_id="bench", role="app")
    latencies: list[float] = []
    size = 0

    async def respond(request: DecisionRequest) -> bytes:
        if hasattr(decider, "decide_json"):  # as POST /v1/decisions answers
            return await decider.decide_json(request, caller=caller)
        return orjson.dumps(await decider.decide(request, caller=caller))  # a tree before decide_json

    async def one_connection(offset: int) -> None:
        nonlocal size
        for i in range(decisions // concurrency):
            started = time.perf_counter()
            request = DecisionRequest.model_validate(strict_json.loads(BODIES[(offset + i) % len(BODIES)]))
            answer = await respond(request)
            latencies.append(time.perf_counter() - started)
            size += len(answer)

    await asyncio.gather(*(one_connection(c) for c in range(concurrency)))
    return latencies, size


def measure(server_url: str, *, decisions: int, concurrency: int, repeat: int) -> list[dict[str, Any]]:
    results = []
    with scratch_database(server_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        store = AuditStore.from_url(url)
        writer = AuditWriter(store, key=SigningKey.generate(),
                             checkpoints=CheckpointPolicy(export_path=Path(tmp) / "checkpoint"))
        decider = Decider(policy=PolicyHolder(load_policy(REPO / "rego")), shadow=None, writer=writer,
                          metrics=Metrics.create())
        with writer:
            asyncio.run(_run(decider, decisions=60, concurrency=1))  # warm-up: cache, plans, partitions
            for _ in range(repeat):
                loop_cpu, process_cpu, pg_cpu = time.thread_time(), time.process_time(), postgres_cpu_seconds()
                t0 = time.perf_counter()
                latencies, size = asyncio.run(_run(decider, decisions=decisions, concurrency=concurrency))
                wall = time.perf_counter() - t0
                loop_cpu, process_cpu = time.thread_time() - loop_cpu, time.process_time() - process_cpu
                pg_cpu = postgres_cpu_seconds() - pg_cpu
                n = len(latencies)
                latencies.sort()
                results.append({
                    "decisions": n, "concurrency": concurrency, "per_second": round(n / wall),
                    "latency_ms": {"p50": round(latencies[n // 2] * 1e3, 3),
                                   "p99": round(latencies[int(n * 0.99)] * 1e3, 3)},
                    "loop_cpu_us_per_decision": round(loop_cpu / n * 1e6, 1),
                    "other_threads_cpu_us_per_decision": round((process_cpu - loop_cpu) / n * 1e6, 1),
                    "postgresql_cpu_us_per_decision": round(pg_cpu / n * 1e6, 1),
                    "response_bytes": size // n,
                })
        store.dispose()
    return results


def steps() -> dict[str, float]:
    """CPU µs of each step of one decision from the cache (see the module's docstring)."""
    policy = load_policy(REPO / "rego")
    decider = Decider(policy=PolicyHolder(policy), shadow=None, writer=None, metrics=Metrics.create())  # type: ignore[arg-type]
    caller = Caller(key_id="bench", role="app")
    body = BODIES[1]
    request = DecisionRequest.model_validate(strict_json.loads(body))
    evaluation = decider.evaluate(policy, request, caller)
    fields, decision = decider.entry(policy, request, caller, evaluation)
    skeleton = prepare_fields(fields)
    encoded = encode_members(skeleton)
    receipt = {"seq": 123456, "leaf_hash": "ab" * 32, "recorded_at": "2026-12-03T21:00:00.000000Z",
               "entry": {**plain(draft_leaf(encoded).members), "seq": 123456,
                         "recorded_at": "2026-12-03T21:00:00.000000Z", "key_id": "k" * 16},
               "checkpoint": "clearance/audit\n123456\n" + "A" * 44 + "\n\n— clearance " + "B" * 96 + "\n",
               "inclusion_proof": ["cd" * 32] * 17}
    answer_json = getattr(evaluation, "answer_json", None)

    def answer() -> bytes:
        if answer_json is None:  # a tree before the spliced answer
            return orjson.dumps({**decision, "audit": receipt})
        return b"".join((b'{"decision_id":', orjson.dumps(decision["decision_id"]),
                         answer_json(decision["policy_revision"]), b',"audit":', orjson.dumps(receipt), b"}"))

    timed = {
        "body: strict_json.loads + DecisionRequest": lambda: DecisionRequest.model_validate(strict_json.loads(body)),
        "cache lookup (Decider.evaluate)": lambda: decider.evaluate(policy, request, caller),
        "entry fields (Decider.entry)": lambda: decider.entry(policy, request, caller, evaluation),
        "prepare_fields": lambda: prepare_fields(fields),
        "encode_members": lambda: encode_members(skeleton),
        "draft_leaf (blobs: SHA-256, facets)": lambda: draft_leaf(encoded),
        "answer bytes": answer,
    }
    out = {}
    for name, fn in timed.items():
        fn()
        out[name] = round(min(timeit.repeat(fn, number=2000, repeat=5, timer=time.thread_time)) / 2000 * 1e6, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", action="store_true", help="time each step alone (no database)")
    args = parser.parse_args()
    if args.steps:
        print(json.dumps(steps(), indent=1))
        return
    for result in measure(args.database, decisions=args.decisions, concurrency=args.concurrency,
                          repeat=args.repeat):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
