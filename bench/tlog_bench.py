"""The v2 log's figures: bytes per entry on disk, verification rate, proof time at 10M leaves.

1. Storage: appends ``--entries`` decisions (default 100,000) over ``--workloads`` distinct
   workloads (default 50: same input and result blob per workload, a new decision id and request
   id per decision) through the real writer from 64 submitter threads, then reports the bytes on
   disk of every v2 table **with its indexes and TOAST** (``pg_total_relation_size`` after
   ``VACUUM``) per entry.
2. Verification: ``audit.logverify.verify_log`` over the whole log in one process (entries/s).
3. Proofs at scale: a synthetic tree of ``--tree`` leaves (default 10,000,000) **inserted
   directly** into a second scratch database (a small body per leaf, without the query indexes;
   the level-8/16 subtrees and the head computed in Python, as the writer would), then ``--proofs`` random inclusion proofs
   and consistency proofs through ``audit.log.inclusion`` / ``consistency`` (what the HTTP
   endpoints run), each on one connection, timed one by one (p50/p99); a sample is checked
   against the root.

    python bench/tlog_bench.py                          # machine PostgreSQL at 127.0.0.1:5432
    python bench/tlog_bench.py --entries 20000 --tree 1000000
    python bench/tlog_bench.py --keep --prefix NAME ...    # keep the scratch databases (printed)
    python bench/tlog_bench.py --reuse-log URL --reuse-tree URL   # measure kept ones again

Prints JSON. The scratch databases are dropped afterwards unless ``--keep``; a reused one is
never dropped. ``--repeat N`` times verification N times (paired A/B runs in one process).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
import uuid_utils  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from audit import AuditStore, AuditWriter, DecisionMembers, SigningKey, upgrade  # noqa: E402
from audit.keys import PublicKey  # noqa: E402
from audit import decision_fields as entry_fields  # noqa: E402
from audit.log import SharedTiles, consistency, inclusion  # noqa: E402
from audit.logverify import verify_log  # noqa: E402
from audit.tlog import verify_consistency, verify_inclusion  # noqa: E402
from audit.tlog.merkle import Frontier, leaf_hash  # noqa: E402
from audit.trust import log_verifier  # noqa: E402
from bench.audit_bench import decision_fields  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TABLES = ("audit_leaves", "audit_blobs", "audit_tlog_nodes", "audit_tlog_checkpoints", "audit_tlog_head")


def _scratch(admin: str, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return name, url


def _drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def storage_and_verification(admin: str, *, entries: int, workloads: int, prefix: str, keep: bool,
                             reuse: str | None, repeat: int) -> dict[str, Any]:
    """Part 1 (append, bytes on disk) on a new scratch database, or only part 2 on ``reuse``."""
    if reuse is not None:
        return {"database": make_url(reuse).database, **_verification(reuse, repeat)}
    name, url = _scratch(admin, prefix)
    try:
        store = AuditStore.from_url(url, pool_size=4)
        key = SigningKey.generate()
        # As the service does (api/decider.py): the input and route lists canonicalised once per
        # distinct evaluation, per decision only the small members.
        shapes = []
        for w in range(workloads):
            f = decision_fields(w)
            shapes.append((f, DecisionMembers.encode(f["input"], f["result"])))

        def fields(i: int) -> dict[str, Any]:
            f, members = shapes[i % workloads]
            result = members.result(decision_id=str(uuid_utils.uuid7()), policy_revision=f["policy_revision"])
            return entry_fields(members=members, result=result, app_id=f["app_id"], caller_key_id=f["caller_key_id"],
                                policy_revision=f["policy_revision"], engine="regorus",
                                context={"request_id": f"req-{i}"}, policy_git=None)

        prepared = [fields(i) for i in range(entries)]
        writer = AuditWriter(store, key=key, max_batch=256).start()
        started = time.perf_counter()
        with ThreadPoolExecutor(64) as pool:
            list(pool.map(writer.append, prepared))
        append_seconds = time.perf_counter() - started
        batches = writer.stats.batches
        writer.close()
        store.dispose()
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            sizes = {t: int(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0]) for t in TABLES}
            indexes = {t: int(conn.execute("SELECT pg_indexes_size(%s)", (t,)).fetchone()[0]) for t in TABLES}
            blobs = int(conn.execute("SELECT count(*) FROM audit_blobs").fetchone()[0])
            body = float(conn.execute("SELECT avg(length(body)) FROM audit_leaves").fetchone()[0])
            # The trusted key travels with a kept database, so --reuse-log can verify it later.
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name),
                                                                         sql.Literal(key.public.raw.hex())))
        total = sum(sizes.values())
        return {
            "database": name if keep else None,
            "entries": entries,
            "distinct_workloads": workloads,
            "blobs_stored": blobs,
            "append_seconds": round(append_seconds, 2),
            "append_entries_per_second": round(entries / append_seconds),
            "batches": batches,
            "mean_batch_size": round(entries / batches, 1),
            "mean_leaf_body_bytes": round(body),
            "bytes_on_disk": sizes,
            "index_bytes": indexes,
            "bytes_per_entry_total": round(total / entries),
            "bytes_per_entry_by_table": {t: round(v / entries, 1) for t, v in sizes.items()},
            **_verification(url, repeat),
        }
    finally:
        if not keep:
            _drop(admin, name)


def _verification(url: str, repeat: int) -> dict[str, Any]:
    """``verify_log`` over the whole log, ``repeat`` times: wall and CPU seconds of each run."""
    store = AuditStore.from_url(url, pool_size=1)
    try:
        with psycopg.connect(_libpq(url)) as conn:
            raw_hex = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                               "WHERE datname = current_database()").fetchone()[0]
        trusted = [log_verifier(PublicKey.from_raw(bytes.fromhex(raw_hex)), store.log_origin())]
        runs = []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            result = verify_log(store, trusted=trusted)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert result.valid, result
            runs.append({"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                         "entries_per_second": round(result.checked / wall),
                         "entries_per_cpu_second": round(result.checked / cpu)})
        return {"verified_entries": result.checked, "checkpoints_checked": result.checkpoints_checked,
                "verify_runs": runs,
                "verify_entries_per_second": max(r["entries_per_second"] for r in runs)}
    finally:
        store.dispose()


def proofs_at_scale(admin: str, *, tree: int, proofs: int, prefix: str, keep: bool,
                    reuse: str | None, seed: int) -> dict[str, Any]:
    if reuse is not None:
        with psycopg.connect(_libpq(reuse)) as conn:
            tree, root = conn.execute("SELECT size, root FROM audit_tlog_head WHERE id = 1").fetchone()
        return {"database": make_url(reuse).database, **_time_proofs(reuse, tree=int(tree), root=bytes(root),
                                                                     proofs=proofs, build_seconds=None, seed=seed)}
    name, url = _scratch(admin, prefix)
    try:
        started = time.perf_counter()
        frontier = Frontier()
        chunk = 100_000
        nodes: list[tuple[int, int, bytes]] = []
        with psycopg.connect(_libpq(url)) as conn:
            conn.execute("SET synchronous_commit = off")
            # Proofs read only the primary keys: the query indexes would only slow the load down.
            conn.execute("DROP INDEX ix_audit_leaves_trace_keys, ix_audit_leaves_decision, ix_audit_leaves_time")
            for lo in range(0, tree, chunk):
                hi = min(tree, lo + chunk)
                bodies = [b'{"kind":"synthetic","seq":%d}' % (i + 1) for i in range(lo, hi)]
                hashes = [leaf_hash(b) for b in bodies]
                grown: list[Any] = []
                frontier = frontier.grow(hashes, nodes=grown)
                nodes += [(n.level, n.index, h) for n, h in grown if n.level and n.level % 8 == 0]
                buffer = io.StringIO()
                for i, (body, h) in enumerate(zip(bodies, hashes, strict=True), start=lo + 1):
                    buffer.write(f"{i}\t2026-01-01T00:00:00Z\tsynthetic\t\\\\x{h.hex()}\t\\\\x{body.hex()}\n")
                with conn.cursor().copy("COPY audit_leaves (seq, recorded_at, kind, leaf_hash, body) FROM STDIN") as copy_:
                    copy_.write(buffer.getvalue())
                conn.commit()
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO audit_tlog_nodes (level, idx, hash) VALUES (%s, %s, %s)", nodes)
                cur.execute("UPDATE audit_tlog_head SET size = %s, root = %s, frontier = %s",
                            (tree, frontier.root(), frontier.to_bytes()))
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
        return {"database": name if keep else None,
                **_time_proofs(url, tree=tree, root=frontier.root(), proofs=proofs,
                               build_seconds=time.perf_counter() - started, seed=seed)}
    finally:
        if not keep:
            _drop(admin, name)


def _time_proofs(url: str, *, tree: int, root: bytes, proofs: int, build_seconds: float | None,
                 seed: int) -> dict[str, Any]:
    """Random inclusion and consistency proofs, timed one by one: wall time of each, and the
    CPU time of this process over all of them (the part a faster fold can remove).

    First the cold start: ``proofs // 4`` inclusion proofs on an empty ``SharedTiles`` (a
    process that has just started and not warmed it). Then a new ``SharedTiles`` warmed by
    ``SharedTiles.warm`` (the tiles above level 0, timed) and 100 proofs to warm the
    connection, then the timed proofs. The
    leaves come from ``seed``: a new one per run by default, since a run repeating the last
    run's leaves finds their pages in PostgreSQL's shared buffers, which random proofs of a
    10M-leaf tree (~1.2 GB of leaves, 128 MB of buffers) mostly do not."""
    rng = random.Random(seed)
    timings: list[float] = []
    consistency_timings: list[float] = []
    cold_timings: list[float] = []
    tiles = SharedTiles()  # the folded tiles the service keeps (Services.proof_tiles)
    with psycopg.connect(_libpq(url)) as conn:
        inclusion(conn, seq=1, size=tree)  # the connection's first statement, without the tiles
        conn.rollback()
        for _ in range(proofs // 4):
            seq = rng.randrange(1, tree + 1)
            t0 = time.perf_counter()
            inclusion(conn, seq=seq, size=tree, tiles=tiles)
            conn.rollback()
            cold_timings.append(time.perf_counter() - t0)
        tiles = SharedTiles()  # a process that warms its tiles at start
        warm_seconds = time.perf_counter()
        warmed = tiles.warm(conn)
        conn.rollback()
        warm_seconds = time.perf_counter() - warm_seconds
        for _ in range(100):  # warm the connection and tiles, as a running service's are
            inclusion(conn, seq=rng.randrange(1, tree + 1), size=tree, tiles=tiles)
            conn.rollback()
        cpu = time.process_time()
        for n in range(proofs):
            seq = rng.randrange(1, tree + 1)
            t0 = time.perf_counter()
            answer = inclusion(conn, seq=seq, size=tree, tiles=tiles)
            conn.rollback()
            timings.append(time.perf_counter() - t0)
            if n % 100 == 0:
                verify_inclusion(leaf_hash=bytes.fromhex(answer["leaf_hash"]), index=seq - 1, size=tree,
                                 proof=[bytes.fromhex(h) for h in answer["inclusion_proof"]], root=root)
        inclusion_cpu = time.process_time() - cpu
        cpu = time.process_time()
        for n in range(proofs // 4):
            old = rng.randrange(1, tree)
            t0 = time.perf_counter()
            answer = consistency(conn, old_size=old, new_size=tree, tiles=tiles)
            conn.rollback()
            consistency_timings.append(time.perf_counter() - t0)
            if n % 100 == 0:
                verify_consistency(old_size=old, new_size=tree, old_root=bytes.fromhex(answer["old_root"]),
                                   new_root=root, proof=[bytes.fromhex(h) for h in answer["consistency_proof"]])
        consistency_cpu = time.process_time() - cpu
    timings.sort()
    consistency_timings.sort()
    cold_timings.sort()

    def ms(values: list[float], q: float) -> float:
        return round(values[min(len(values) - 1, int(len(values) * q))] * 1000, 3)

    return {
        "tree_leaves": tree,
        "synthetic": "leaves inserted directly with COPY (small bodies), subtrees and head computed in Python",
        "build_seconds": round(build_seconds, 1) if build_seconds is not None else None,
        "seed": seed,
        "cold_start_inclusion_proofs": len(cold_timings),
        "cold_start_inclusion_ms_p50": ms(cold_timings, 0.5),
        "cold_start_inclusion_ms_p99": ms(cold_timings, 0.99),
        "warmed_upper_tiles": warmed,
        "warm_upper_tiles_seconds": round(warm_seconds, 3),
        "inclusion_proofs": proofs,
        "inclusion_ms_p50": ms(timings, 0.5),
        "inclusion_ms_p99": ms(timings, 0.99),
        "inclusion_ms_mean": round(statistics.mean(timings) * 1000, 3),
        "inclusion_cpu_ms_mean": round(inclusion_cpu / proofs * 1000, 3),
        "consistency_proofs": len(consistency_timings),
        "consistency_ms_p50": ms(consistency_timings, 0.5),
        "consistency_ms_p99": ms(consistency_timings, 0.99),
        "consistency_cpu_ms_mean": round(consistency_cpu / max(1, len(consistency_timings)) * 1000, 3),
        "checked_against_root": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--workloads", type=int, default=50)
    parser.add_argument("--tree", type=int, default=10_000_000)
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="verification runs (each timed)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the proofs' random leaves (default: a new seed per run, printed)")
    parser.add_argument("--skip-storage", action="store_true")
    parser.add_argument("--skip-proofs", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases (named in the output)")
    parser.add_argument("--prefix", default="clearance_tlog_bench", help="scratch database name prefix")
    parser.add_argument("--reuse-log", metavar="URL", help="verify this kept log instead of appending one")
    parser.add_argument("--reuse-tree", metavar="URL", help="time proofs on this kept tree instead of building one")
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    admin = _libpq(os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL))
    out: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}}
    if not args.skip_storage:
        out["storage_and_verification"] = storage_and_verification(
            admin, entries=args.entries, workloads=args.workloads, prefix=args.prefix, keep=args.keep,
            reuse=args.reuse_log, repeat=args.repeat)
        print(json.dumps(out, indent=2), flush=True)
    if not args.skip_proofs:
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
        out["proofs"] = proofs_at_scale(admin, tree=args.tree, proofs=args.proofs, prefix=args.prefix,
                                        keep=args.keep, reuse=args.reuse_tree, seed=seed)
    print(json.dumps(out, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
