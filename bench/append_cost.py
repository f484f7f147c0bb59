"""What one audit entry costs to append, in Python and in PostgreSQL, and what each index adds.

    python bench/append_cost.py [--batches 1000] [--batch 16] [--variants shipped,no_facets,...]

For each variant: a scratch database at the newest schema, altered as the variant says, then
``AuditStore.append_v1_batch`` (the v1 chain, whose indexes it compares) in one thread with real decision entries (the reference policy,
the six workloads of bench/inprocess.py, ~13 KB each). Reports per entry: wall time, this
process's CPU, and the CPU of every PostgreSQL process of the server (backend, WAL writer,
checkpointer: /proc, so the server must run on this machine), plus batch latency p50/p99/max.
No HTTP, no contention: the cost of the append itself, e.g. to see what an index costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from audit import AuditStore, SigningKey, upgrade  # noqa: E402
from audit.chain import encode_members  # noqa: E402
from audit.entry import prepare_fields  # noqa: E402
from bench.inprocess import WORKLOADS  # noqa: E402
from bench.report import emit, markdown_table  # noqa: E402
from bench.inprocess import decider_for  # noqa: E402
from policy import Caller, DecisionRequest, load_policy  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Partitioned indexes take no storage parameters: set them on each partition's index.
_ON_GIN_PARTITION_INDEXES = (
    "DO $$ DECLARE r record; BEGIN FOR r IN SELECT c.relname FROM pg_inherits i "
    "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
    "JOIN pg_am a ON a.oid = c.relam WHERE p.relname LIKE 'ix_audit_entries_%%' AND a.amname = 'gin' "
    "LOOP EXECUTE format('ALTER INDEX %%I SET (%s)', r.relname); END LOOP; END $$"
)
VARIANTS: dict[str, dict[str, Any]] = {
    "shipped": {"sql": [], "session": []},
    "no_facets": {"sql": ["DROP INDEX ix_audit_entries_facets"], "session": []},
    "gin_fastupdate_off": {"sql": [_ON_GIN_PARTITION_INDEXES % "fastupdate = off"], "session": []},
    "gin_pending_4mb": {"sql": [], "session": ["SET gin_pending_list_limit = '4MB'"]},
}


def decision_entries(count: int) -> list[dict[str, Any]]:
    """``count`` audit entries' fields as the decider makes them (the six workloads in turn)."""
    policy = load_policy(REPO / "rego")
    decider = decider_for(policy)
    caller = Caller(key_id="bench", role="app")
    out = []
    for i in range(count):
        request = DecisionRequest.model_validate(WORKLOADS[i % len(WORKLOADS)])
        out.append(decider.entry(policy, request, caller, decider.evaluate(policy, request, caller))[0])
    return out


def entries(count: int) -> list[dict[str, Any]]:
    """``count`` entry skeletons as the service submits them (encoded members)."""
    return [encode_members(prepare_fields(fields)) for fields in decision_entries(count)]


def postgres_cpu_seconds() -> float:
    ticks = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() != "postgres":
                continue
            fields = (comm.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    name = f"clearance_append_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(server_url: str, variant: str, *, batches: int, batch: int) -> dict[str, Any]:
    spec = VARIANTS[variant]
    with scratch_database(server_url) as url:
        upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in spec["sql"]:
                conn.execute(statement)
        store = AuditStore.from_url(url)

        @event.listens_for(store.engine, "connect")
        def _session(dbapi: Any, _record: Any) -> None:  # after the store's own settings
            for statement in spec["session"]:
                dbapi.execute(statement)
            dbapi.commit()

        key = SigningKey.generate()
        store.register_key(key.public)
        skeletons = entries(batch)
        for _ in range(20):  # warm-up: connection, plans, partitions
            store.append_v1_batch(skeletons, key=key)
        latencies = []
        t0, c0, p0 = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
        for _ in range(batches):
            started = time.perf_counter()
            store.append_v1_batch(skeletons, key=key)
            latencies.append(time.perf_counter() - started)
        t1, c1, p1 = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
        store.dispose()
    n = batches * batch
    latencies.sort()
    return {
        "variant": variant, "entries": n, "batch": batch,
        "wall_us_per_entry": round((t1 - t0) / n * 1e6, 1),
        "python_cpu_us_per_entry": round((c1 - c0) / n * 1e6, 1),
        "postgresql_cpu_us_per_entry": round((p1 - p0) / n * 1e6, 1),
        "entries_per_second": round(n / (t1 - t0)),
        "batch_ms": {"p50": round(latencies[len(latencies) // 2] * 1e3, 2),
                     "p99": round(latencies[int(len(latencies) * 0.99)] * 1e3, 2),
                     "max": round(latencies[-1] * 1e3, 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL),
                        help="a PostgreSQL server URL on this machine (a scratch database is created)")
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16, help="entries per batch (the service sees ~8-25)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [measure(args.database, v, batches=args.batches, batch=args.batch) for v in args.variants.split(",")]
    table = markdown_table(
        ("variant", "Python CPU / entry", "PostgreSQL CPU / entry", "wall / entry", "batch p50 / p99 / max"),
        ((r["variant"], f"{r['python_cpu_us_per_entry']:.0f} µs", f"{r['postgresql_cpu_us_per_entry']:.0f} µs",
          f"{r['wall_us_per_entry']:.0f} µs", f"{r['batch_ms']['p50']} / {r['batch_ms']['p99']} / {r['batch_ms']['max']} ms")
         for r in results))
    emit(table, results, args.json)


if __name__ == "__main__":
    main()
