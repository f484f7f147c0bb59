"""Audited throughput across server settings (workers, audit batching window) and load (connections).

    python bench/sweep.py [--workers 1,2,3] [--batch-ms 0.5,1,2] [--connections 32] [--repeat 2] [--duration 15]

Runs `bench/http_bench.py` once per setting and repetition (audited run only matters here; the
low-concurrency run is skipped) and prints a markdown table: audited decisions/s, latency, and
how busy the chain-head lock was. This is where the defaults (2 workers on 2 cores, a 1 ms
window) come from; runs on a shared machine move by 10-20%, hence the repetitions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import emit, markdown_table  # noqa: E402


def one(workers: str, batch_ms: str, connections: str, duration: int, out: Path,
        database: str | None) -> dict[str, Any]:
    where = ["--database", database] if database else []
    subprocess.run([sys.executable, str(REPO / "bench" / "http_bench.py"), "--workers", workers,
                    "--batch-ms", batch_ms, "--connections", connections, "--duration", str(duration),
                    "--low-connections", "0",
                    *where, "--json", str(out)], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--batch-ms", default="1")
    parser.add_argument("--connections", default="32")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--database", help="PostgreSQL server URL for http_bench.py (default: its own)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers, batch_ms, connections in itertools.product(
                args.workers.split(","), args.batch_ms.split(","), args.connections.split(",")):
            runs = [one(workers, batch_ms, connections, args.duration,
                        Path(tmp) / f"{workers}-{batch_ms}-{connections}-{i}.json", args.database)
                    for i in range(args.repeat)]
            audited = [r["audited_decisions"] for r in runs]
            rows.append({
                "workers": int(workers), "batch_ms": float(batch_ms), "connections": int(connections),
                "rates_per_s": [round(a["rate_per_s"]) for a in audited],
                "p50_ms": statistics.median(a["latency_us"]["p50"] for a in audited) / 1000,
                "p99_ms": statistics.median(a["latency_us"]["p99"] for a in audited) / 1000,
                "lock_held": statistics.median(r["chain_lock_during_audited"]["held_share"] for r in runs),
                "idle_cores": statistics.median(r["cpu_cores_during_audited"]["idle"] for r in runs),
            })
    table = markdown_table(
        ("workers", "batch window", "connections", "audited/s (each run)", "p50", "p99", "chain lock held",
         "idle cores"),
        ((str(r["workers"]), f"{r['batch_ms']:g} ms", str(r["connections"]), ", ".join(f"{x:,}" for x in r["rates_per_s"]),
          f"{r['p50_ms']:.1f} ms", f"{r['p99_ms']:.1f} ms", f"{r['lock_held']:.0%}", f"{r['idle_cores']:.2f}")
         for r in rows))
    emit(table, rows, args.json)


if __name__ == "__main__":
    main()
