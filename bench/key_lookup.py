"""CPU of one API-key lookup in the database (``api.apikeys.KeyVerifier.lookup``), which a
request that misses the key cache waits for and each renewal spends beside the event loop.

    python bench/key_lookup.py [--lookups 2000] [--rounds 3] [--database URL] [--json OUT]

A scratch database at the newest schema on the machine's PostgreSQL, one auditor key, the
service's own store (``AuditStore.from_url``, pool and pre-ping as the service has them); per
round: wall time and this thread's CPU per lookup, after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.apikeys import KeyVerifier, Role, create_key  # noqa: E402
from audit import AuditStore, upgrade  # noqa: E402
from bench.http_bench import MACHINE_PG, create_database, drop_database  # noqa: E402
from bench.report import emit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000, help="lookups per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", MACHINE_PG),
                        help="a PostgreSQL server URL (a fresh database is created on it)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    name, url = create_database(args.database)
    try:
        sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        upgrade(sa_url)
        store = AuditStore.from_url(sa_url, pool_size=4)
        key, _ = create_key(store.engine, role=Role.auditor, app_id=None)
        verifier = KeyVerifier(store.engine, ttl=0)  # nothing cached: every call reads the row
        for _ in range(min(200, args.lookups)):
            verifier.lookup(key)
        rounds = []
        for _ in range(args.rounds):
            wall, cpu = time.perf_counter(), time.thread_time()
            for _ in range(args.lookups):
                verifier.lookup(key)
            rounds.append({"wall_us": (time.perf_counter() - wall) / args.lookups * 1e6,
                           "cpu_us": (time.thread_time() - cpu) / args.lookups * 1e6})
        store.engine.dispose()
    finally:
        drop_database(args.database, name)
    table = "".join(f"round {i + 1}: {r['wall_us']:.0f} µs wall, {r['cpu_us']:.0f} µs CPU per lookup\n"
                    for i, r in enumerate(rounds))
    emit(table, {"lookups_per_round": args.lookups, "rounds": rounds}, args.json)


if __name__ == "__main__":
    main()
