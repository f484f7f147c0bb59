"""A flood of well-formed but unknown API keys, and what apps with real keys see meanwhile.

    python bench/key_flood.py [--duration 8] [--connections 32] [--database URL] [--json OUT]

Every request whose key the caches do not know waits for a lookup in the database on the
key-lookup threads, and a random key id is new each time, so no cached refusal answers it. The
bench starts ``clearance serve`` (default settings) on a scratch database of the machine's
PostgreSQL, and while ``wrk`` sends requests with such keys (``bench/wrk/unknown_keys.lua``,
``--connections``), a client on a connection of its own sends, every 50 ms, a request with a
real key already in use (cached, renewed as it goes) and, every 500 ms, the first request of a
real key never used before (a miss). It reports the flood's rate and answers, and the
latencies of both kinds of real requests. Before the flood the same probes run for a second
alone, for comparison.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.api_keys import create_keys  # noqa: E402
from bench.http_bench import add_server_arguments, bench_server  # noqa: E402
from bench.report import emit  # noqa: E402

LUA = REPO / "bench" / "wrk" / "unknown_keys.lua"


def probe(client: httpx.Client, cached: str, fresh: list[str], seconds: float) -> dict[str, Any]:
    """Requests with the cached key every 50 ms and a new key's first request every 500 ms."""
    cached_ms: list[float] = []
    fresh_ms: list[float] = []
    statuses: dict[str, int] = {}
    end = time.monotonic() + seconds
    tick = 0
    while time.monotonic() < end:
        keys = [("cached", cached)] + ([("fresh", fresh.pop())] if tick % 10 == 0 and fresh else [])
        for kind, key in keys:
            started = time.perf_counter()
            status = client.get("/v1/policy", headers={"Authorization": f"Bearer {key}"}).status_code
            (cached_ms if kind == "cached" else fresh_ms).append((time.perf_counter() - started) * 1e3)
            statuses[f"{kind} {status}"] = statuses.get(f"{kind} {status}", 0) + 1
        tick += 1
        time.sleep(0.05)
    return {"statuses": statuses, "cached_key_ms": _summary(cached_ms), "first_request_of_new_key_ms": _summary(fresh_ms)}


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"n": len(values), "p50": round(statistics.median(values), 1), "max": round(max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds of flood")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections of the flood")
    add_server_arguments(parser)
    args = parser.parse_args()

    with bench_server(args.database, args.server_env) as served:
        cached, *fresh = create_keys(served.env, *["auditor"] * (5 + 2 * args.duration))
        with httpx.Client(base_url=served.base, timeout=60) as client:
            client.get("/v1/policy", headers={"Authorization": f"Bearer {cached}"})
            alone = probe(client, cached, fresh, 1.0)
            flood: dict[str, Any] = {}
            flooding = threading.Thread(target=lambda: flood.update(_flood(served.base, args)))
            flooding.start()
            time.sleep(1.0)  # the flood is under way
            during = probe(client, cached, fresh, args.duration - 2)
            flooding.join()
    result = {"flood": flood, "alone": alone, "during_flood": during}
    table = (f"flood: {flood['rate_per_s']:.0f} requests/s with unknown keys, {flood['non_2xx']} answered non-2xx "
             f"of {flood['requests']}, {flood['timeouts']} timeouts, latency p50 {flood['p50']} p99 {flood['p99']}\n"
             f"alone:       cached key {alone['cached_key_ms']}, new key's first request "
             f"{alone['first_request_of_new_key_ms']}, {alone['statuses']}\n"
             f"during flood: cached key {during['cached_key_ms']}, new key's first request "
             f"{during['first_request_of_new_key_ms']}, {during['statuses']}\n")
    emit(table, result, args.json)


def _flood(base: str, args: argparse.Namespace) -> dict[str, Any]:
    out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency", "-s", str(LUA),
                          base], capture_output=True, text=True, check=True, timeout=args.duration + 60).stdout
    found = {name: re.search(pattern, out) for name, pattern in {
        "rate_per_s": r"Requests/sec:\s+([\d.]+)", "requests": r"(\d+) requests in",
        "non_2xx": r"Non-2xx or 3xx responses: (\d+)", "timeouts": r"timeout (\d+)",
        # at a line's start: the thread statistics' "+/- Stdev" column can end in "50%" too
        "p50": r"(?m)^\s+50%\s+(\S+)", "p99": r"(?m)^\s+99%\s+(\S+)"}.items()}
    result: dict[str, Any] = {name: (m.group(1) if m else "0") for name, m in found.items()}
    result["rate_per_s"] = float(result["rate_per_s"])
    return result


if __name__ == "__main__":
    main()
