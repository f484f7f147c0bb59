"""A serving worker's memory across policy reloads: does it level off?

    python bench/reload_memory.py [--rounds 30] [--decisions 30] [--every 5] [--thaw 15]

Starts ``clearance serve`` (its default worker count) on a fresh database of the machine's
PostgreSQL with a copy of this checkout's bundle as its policy directory. Each round sends
``--decisions`` audited decisions (the README's request: one distinct input, as an app asking the
same question), edits the copy (a comment appended to ``licence.rego``: a new revision) and asks
``POST /v1/policy/reload`` twice (the second finds nothing changed). Every ``--every`` rounds it
reads each worker's resident memory (VmRSS); after the last round it waits one heap thaw
(``CLEARANCE_GC_THAW_SECONDS``, shortened to ``--thaw`` so that cyclic garbage is collected within
the run) and reads it again. It also counts the regorus objects dropped on another thread than
their own, which PyO3 leaks with a warning ("unsendable") in the server's log.

What a leak looks like: memory growing by a similar step every round. Until 2026-12-05 each
answer in the evaluation cache kept the bundle it was evaluated with alive, so with one distinct
input every reload kept one more bundle (docs/limits.md).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.api_keys import create_keys  # noqa: E402
from bench.http_bench import add_server_arguments, bench_server, status_mb, worker_pids  # noqa: E402
from bench.report import emit  # noqa: E402

REQUEST = {"app_id": "claims-summariser", "workload": {
    "task": "summarization", "quality_tier": "commodity", "regulatory_tier": "regulated",
    "sector": "financial_services", "jurisdictions": ["EU", "US"], "data_classification": "confidential",
    "monthly_active_users": 1200000, "min_context_tokens": 32000, "max_price_per_mtok": 5.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--decisions", type=int, default=30, help="audited decisions per round")
    parser.add_argument("--every", type=int, default=5, help="read the workers' memory every this many rounds")
    parser.add_argument("--connections", type=int, default=1,
                        help="connections the decisions take turns on (1: every decision reaches the same worker)")
    parser.add_argument("--thaw", type=float, default=15.0, help="CLEARANCE_GC_THAW_SECONDS of the server")
    add_server_arguments(parser)
    args = parser.parse_args()

    def policy_copy(tmp: Path) -> list[str]:  # the bundle the rounds edit
        shutil.copytree(REPO / "rego", tmp / "rego")
        return [f"CLEARANCE_POLICY_DIR={tmp / 'rego'}"]

    with bench_server(args.database, [f"CLEARANCE_GC_THAW_SECONDS={args.thaw}", *args.server_env],
                      prepare=policy_copy) as served:
        result = _rounds(served.base, served.process.pid, served.tmp / "rego", args, served.env)
        result["unsendable_warnings"] = served.log.read_text(errors="replace").count("unsendable")
    rows = "\n".join(f"| {r['round']} | {' | '.join(f'{mb:.0f}' for mb in r['rss_mb'])} |" for r in result["samples"])
    table = (f"| round | VmRSS of each worker (MB) |\n|---|---|\n{rows}\n"
             f"reloads accepted: {result['reloads_accepted']}, regorus objects leaked on another thread: "
             f"{result['unsendable_warnings']}\n")
    emit(table, result, args.json)


def _rounds(base: str, master: int, policy: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    app_key, admin_key = create_keys(env, "app:claims-summariser", "admin")
    app, admin = {"Authorization": f"Bearer {app_key}"}, {"Authorization": f"Bearer {admin_key}"}
    workers = worker_pids(master)
    samples: list[dict[str, Any]] = []
    accepted = 0

    def sample(label: int | str) -> None:
        samples.append({"round": label, "rss_mb": [round(status_mb(pid, "VmRSS"), 1) for pid in workers]})

    with httpx.Client(base_url=base, timeout=120) as client, contextlib.ExitStack() as open_clients:
        # The reloads' connection decides too; more connections are spread over the workers by the kernel.
        deciders = [client, *(open_clients.enter_context(httpx.Client(base_url=base, timeout=120))
                              for _ in range(args.connections - 1))]
        sample(0)
        for round_ in range(1, args.rounds + 1):
            for i in range(args.decisions):
                deciders[i % len(deciders)].post("/v1/decisions", json=REQUEST, headers=app).raise_for_status()
            with (policy / "licence.rego").open("a") as rego:
                rego.write(f"# reload_memory round {round_}\n")
            for _ in range(2):
                answer = client.post("/v1/policy/reload", headers=admin)
                answer.raise_for_status()
                accepted += answer.json().get("changed", False) is True
            if round_ % args.every == 0 or round_ == args.rounds:
                sample(round_)
        time.sleep(args.thaw + 5)  # one thaw of the heap: cyclic garbage collected
        sample(f"{args.rounds} + thaw")
    return {"workers": len(workers), "rounds": args.rounds, "decisions_per_round": args.decisions,
            "connections": args.connections,
            "reloads_accepted": accepted, "samples": samples}


if __name__ == "__main__":
    main()
