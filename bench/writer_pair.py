"""Two workers' writers on one database and checkpoint file, no HTTP: the CPU per entry when
each batch follows the other worker's (the full path of ``audit/writer.py``).

    python bench/writer_pair.py [--threads 16] [--seconds 8]

Two processes (as `clearance serve` runs two workers here), each with one ``AuditWriter`` and
``--threads`` callers that append decision entries back to back (the reference policy's six
workloads). Reports entries/s, the writer processes' CPU and their PostgreSQL backends' CPU per
entry (/proc: the server must run on this machine), and each writer's batch counts (full
checks, one round trip on its own head, head moved, on the other's head from the mailbox).
The writers share a head mailbox (``audit.head_mailbox``, as ``clearance serve``'s workers do)
unless ``--no-mailbox``. CPU per entry is the figure a shared, noisy machine measures best.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit import AuditStore, AuditWriter, init_key, upgrade  # noqa: E402
from audit.checkpoints import CheckpointPolicy  # noqa: E402
from audit.keys import load_signing_key  # noqa: E402
from bench.append_cost import DEFAULT_URL, decision_entries, scratch_database  # noqa: E402

BACKENDS_SQL = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
STATS = ("batches", "entries", "full_checks", "one_trip", "head_moved", "sibling_head", "mailbox_busy")


def worker(url: str, key_file: str, checkpoint_file: str, threads: int, seconds: float,
           ready: Any, go: Any, done: Any, out: Any, mailbox: bool = True) -> None:
    """One worker: warm up, wait for ``go``, append for ``seconds``, report, wait for ``done``."""
    samples = decision_entries(6)
    store = AuditStore.from_url(url)
    key = load_signing_key(key_file)
    shared: dict[str, Any] = {}
    if mailbox:
        from audit.head_mailbox import HeadMailbox, mailbox_path_for

        shared["mailbox"] = HeadMailbox(mailbox_path_for(Path(checkpoint_file)), key)
    writer = AuditWriter(store, key=key, max_wait=0.001,
                         checkpoints=CheckpointPolicy(export_path=Path(checkpoint_file)), **shared).start()
    for i in range(20):  # connection, plans, partitions
        writer.append(samples[i % 6])
    ready.put(os.getpid())
    go.wait()
    stop, counts = time.monotonic() + seconds, [0] * threads

    def caller(k: int) -> None:
        while time.monotonic() < stop:
            writer.append(samples[(k + counts[k]) % 6])
            counts[k] += 1

    stats0 = {k: getattr(writer.stats, k, 0) for k in STATS}
    t0 = os.times()
    callers = [threading.Thread(target=caller, args=(k,)) for k in range(threads)]
    for c in callers:
        c.start()
    for c in callers:
        c.join()
    t1 = os.times()
    out.put({"entries": sum(counts), "cpu": (t1.user - t0.user) + (t1.system - t0.system),
             "stats": {k: getattr(writer.stats, k, 0) - stats0[k] for k in STATS}})
    done.wait()
    writer.close()
    store.dispose()


def _ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def measure(server_url: str, *, threads: int, seconds: float, mailbox: bool = True) -> dict[str, Any]:
    import psycopg

    with scratch_database(server_url) as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        key_file = Path(tmp) / "signing.key"
        init_key(key_file)
        ctx = mp.get_context("spawn")
        ready, out, go, done = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
        procs = [ctx.Process(target=worker, args=(url, str(key_file), str(Path(tmp) / "checkpoint"), threads,
                                                  seconds, ready, go, done, out, mailbox)) for _ in range(2)]
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=120)
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            backends = [r[0] for r in conn.execute(BACKENDS_SQL)]
        p0 = _ticks(backends)
        go.set()
        results = [out.get(timeout=seconds + 120) for _ in procs]
        p1 = _ticks(backends)
        done.set()
        for p in procs:
            p.join()
    n = sum(r["entries"] for r in results)
    hz = os.sysconf("SC_CLK_TCK")
    stats = {k: sum(r["stats"][k] for r in results) for k in STATS}
    return {
        "entries": n, "entries_per_second": round(n / seconds), "threads_per_worker": threads,
        "writer_processes_cpu_us_per_entry": round(sum(r["cpu"] for r in results) / n * 1e6, 1),
        "postgresql_backends_cpu_us_per_entry": round((p1 - p0) / hz / n * 1e6, 1),
        "mean_batch": round(stats["entries"] / max(1, stats["batches"]), 2), "batches": stats, "mailbox": mailbox,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--threads", type=int, default=16, help="callers per worker")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--no-mailbox", action="store_true", help="the writers share no head mailbox")
    args = parser.parse_args()
    text = json.dumps(measure(args.database, threads=args.threads, seconds=args.seconds,
                              mailbox=not args.no_mailbox))
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
