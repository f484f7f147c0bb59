"""Audit trail benchmark: append throughput with group commit, and the verification rate.

Creates a scratch database on a real PostgreSQL, migrates it, appends decision entries of a
realistic size from many concurrent submitters in ONE process (each submitter blocks until its
entry committed, as a request handler does), then verifies the whole chain. Prints JSON.

    python bench/audit_bench.py                       # machine PostgreSQL at 127.0.0.1:5432
    python bench/audit_bench.py --entries 50000 --submitters 128
    CLEARANCE_BENCH_DATABASE_URL=postgresql://user@host/postgres python bench/audit_bench.py

The URL names a maintenance database; the scratch database is dropped afterwards (--keep keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

import psycopg  # noqa: E402
import uuid_utils  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from audit import (  # noqa: E402
    AuditStore,
    AuditWriter,
    CheckpointPolicy,
    SigningKey,
    upgrade,
)
from audit.logverify import verify_log  # noqa: E402
from audit.trust import log_verifier  # noqa: E402
from audit.canonical import GENESIS_PREV_HASH  # noqa: E402
from audit.chain import build_entry
from audit.entry import prepare_fields  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def decision_fields(i: int) -> dict[str, Any]:
    """A decision like the service records: full input, ~4 cleared and ~24 denied routes."""
    decision_id = str(uuid_utils.uuid7())
    revision = "sha256:" + "3f" * 32
    allowed = [
        {"model": f"open-model-{r}", "deployment": "self-hosted", "rank": r + 1,
         "price_per_mtok": round(0.1 + r * 0.05, 4), "provenance": "open_western",
         "obligations": ["attribution:Built with an open model", "zero_data_retention"]}
        for r in range(4)
    ]
    denied = [
        {"model": f"model-{r}", "deployment": f"provider-{r % 5}-api",
         "reasons": [{"code": "LICENCE_MAU_CAP",
                      "message": f"{1_200_000 + i} MAU exceeds the 700000 cap of the licence"},
                     {"code": "UNSUITABLE_PRICE",
                      "message": "blended price 12.5 per Mtok is above the limit of 5.0"}][: 1 + r % 2]}
        for r in range(24)
    ]
    return {
        "kind": "decision",
        "decision_id": decision_id,
        "app_id": f"app-{i % 7}",
        "caller_key_id": f"ak_{i % 11:04d}",
        "input": {
            "app": {"id": f"app-{i % 7}", "owner": "payments-team", "programs": [],
                    "capability_approvals": [], "attestations": []},
            "workload": {"task": "summarization", "quality_tier": "commodity",
                         "regulatory_tier": "regulated", "sector": "financial_services",
                         "jurisdictions": ["EU", "US"], "data_classification": "confidential",
                         "dangerous_capability": "none", "commercial": True,
                         "monthly_active_users": 1_200_000 + i, "min_context_tokens": 32000,
                         "max_price_per_mtok": 5.0,
                         "deployment_modes": ["self_hosted", "vendor_api", "cloud"]},
            "caller": {"key_id": f"ak_{i % 11:04d}", "role": "app"},
            "context": {"request_id": f"req-{i}"},
        },
        "result": {"decision_id": decision_id, "outcome": "allow", "allowed": allowed,
                   "denied": denied, "policy_revision": revision},
        "outcome": "allow",
        "policy_revision": revision,
        "engine": "regorus",
    }


def run_appends(
    store: AuditStore, key: SigningKey, *, entries: int, submitters: int, max_batch: int,
    max_wait: float,
) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    fields = [decision_fields(i) for i in range(entries)]  # built before the clock starts
    writer = AuditWriter(
        store, key=key, max_batch=max_batch, max_wait=max_wait,
        checkpoints=CheckpointPolicy(every_entries=10_000, every_seconds=60),
    ).start()

    def submit(i: int) -> None:
        t0 = time.perf_counter()
        writer.append(fields[i])
        elapsed = time.perf_counter() - t0
        with lock:
            latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(submitters) as pool:
        list(pool.map(submit, range(entries)))
    wall = time.perf_counter() - started
    writer.close()
    latencies.sort()
    return {
        "entries": entries,
        "submitters": submitters,
        "max_batch": max_batch,
        "max_wait_ms": max_wait * 1000,
        "seconds": round(wall, 3),
        "entries_per_second": round(entries / wall),
        "transactions": writer.stats.batches,
        "mean_batch_size": round(entries / max(1, writer.stats.batches), 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--submitters", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--unbatched-entries", type=int, default=2_000,
                        help="entries for the max_batch=1 baseline (0 to skip)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    server = make_url(args.url).set(drivername="postgresql")
    name = f"clearance_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        server_version = conn.info.server_version
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        store = AuditStore.from_url(url)
        key = SigningKey.generate()
        report: dict[str, Any] = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "postgresql": server_version,
            "body_bytes": len(
                build_entry(
                    prepare_fields(decision_fields(0)), seq=1, prev_hash=GENESIS_PREV_HASH,
                    recorded_at=datetime.now(UTC), key=key,
                ).body
            ),
        }
        report["batched"] = run_appends(
            store, key, entries=args.entries, submitters=args.submitters,
            max_batch=args.max_batch, max_wait=args.max_wait_ms / 1000,
        )
        if args.unbatched_entries:
            report["unbatched"] = run_appends(
                store, key, entries=args.unbatched_entries, submitters=args.submitters,
                max_batch=1, max_wait=0,
            )
        started = time.perf_counter()
        result = verify_log(store, trusted=[log_verifier(key.public, store.log_origin())])
        seconds = time.perf_counter() - started
        report["verify"] = {
            "valid": result.valid,
            "entries": result.checked,
            "seconds": round(seconds, 3),
            "entries_per_second": round(result.checked / seconds),
        }
        store.dispose()
    finally:
        if not args.keep:
            with psycopg.connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
