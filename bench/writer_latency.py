"""What one audited entry costs through the writer alone: one caller, no HTTP.

    python bench/writer_latency.py [--entries 2000] [--threads 1] [--no-checkpoint-file]

A scratch database at the newest schema and a checkpoint file, then ``AuditWriter.append``
from ``--threads`` threads (each waits for its receipt before submitting the next, as one
connection of an HTTP client does), with real decision entries (the reference policy, the six
workloads of bench/inprocess.py). Reports per entry: latency p50/p99, this process's CPU and
the CPU of every PostgreSQL process (/proc: the server must run on this machine). CPU per entry
is what a shared, noisy machine measures best; the latency is the one-caller floor of the
writer (round trips, fsync of the commit, the checkpoint file) without the HTTP stack.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit import AuditStore, AuditWriter, SigningKey, upgrade  # noqa: E402
from audit.checkpoints import CheckpointPolicy  # noqa: E402
from bench.append_cost import DEFAULT_URL, decision_entries, postgres_cpu_seconds, scratch_database  # noqa: E402
from bench.inprocess import WORKLOADS  # noqa: E402


def measure(server_url: str, *, entries: int, threads: int, checkpoint_file: bool = True) -> dict[str, Any]:
    samples = decision_entries(len(WORKLOADS))
    with scratch_database(server_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        store = AuditStore.from_url(url)
        key = SigningKey.generate()
        # Without the file (--no-checkpoint-file): what writing it after every batch costs, the
        # most that writing it less often could save (the service always writes it).
        policy = CheckpointPolicy(export_path=Path(tmp) / "checkpoint") if checkpoint_file else None
        writer = AuditWriter(store, key=key, checkpoints=policy)
        with writer:
            for i in range(50):  # warm-up: connection, plans, partitions
                writer.append(samples[i % len(samples)])
            latencies: list[float] = []
            per_thread = entries // threads

            def caller() -> None:
                for i in range(per_thread):
                    started = time.perf_counter()
                    writer.append(samples[i % len(samples)])
                    latencies.append(time.perf_counter() - started)

            workers = [threading.Thread(target=caller, name=f"caller-{i}") for i in range(threads)]
            t0, c0, p0 = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
            threads0 = thread_cpu_seconds()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            t1, c1, p1 = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
            threads1 = thread_cpu_seconds()
            batches = writer.stats.batches
            # Batches written in one round trip on the writer's own head, and full head checks.
            one_trip, full_checks = writer.stats.one_trip, writer.stats.full_checks
        store.dispose()
    n = per_thread * threads
    latencies.sort()
    return {
        "entries": n, "threads": threads, "batches_total": batches, "one_round_trip_batches": one_trip,
        "full_checks": full_checks,
        "entries_per_second": round(n / (t1 - t0)),
        "latency_ms": {"p50": round(latencies[n // 2] * 1e3, 3), "p99": round(latencies[int(n * 0.99)] * 1e3, 3)},
        "python_cpu_us_per_entry": round((c1 - c0) / n * 1e6, 1),
        "postgresql_cpu_us_per_entry": round((p1 - p0) / n * 1e6, 1),
        # The process's CPU by thread: the audit writer's, the checkpoint file's (the callers'
        # are gone by then: the rest of the process's CPU is theirs and the other threads').
        "thread_cpu_us_per_entry": {name: round((threads1[name] - threads0.get(name, 0.0)) / n * 1e6, 1)
                                    for name in threads1},
    }


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds of the writer's own threads (by name), from their per-thread clocks."""
    found: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.name.startswith("clearance-") and thread.ident is not None:
            found[thread.name] = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-checkpoint-file", action="store_true", help="no checkpoint file (what it costs)")
    args = parser.parse_args()
    print(measure(args.database, entries=args.entries, threads=args.threads,
                  checkpoint_file=not args.no_checkpoint_file))


if __name__ == "__main__":
    main()
