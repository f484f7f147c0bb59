"""Compliance queries at volume: load N valid, chained, signed entries, then time what officers do.

1. Decide a few hundred distinct, varied requests with the real policy engine (``rego/``).
2. Reuse those decisions with fresh decision ids and times spread over ``--days`` days: each
   body is still canonical RFC 8785 (the canonical template is made once per decision with
   placeholder values; seq, ids, times and prev_hash are substituted as canonical literals),
   hashed into the chain serially and signed (Ed25519) by ``--workers`` processes, then written
   with ``COPY`` together with its derived columns, a signed checkpoint every 1000 entries and
   the chain head — exactly what the writer would have stored.
3. Time: the first page of filtered queries (p50/p95 over ``--repeat`` runs each), stats over
   the last 30 days, a JSONL export of ``--export-rows`` rows (with its peak Python memory), and
   verification of the newest ``--verify-entries`` entries (with 1 and with ``--workers``).

    python bench/volume.py                          # 1,000,000 entries (≈10 min on 2 cores)
    python bench/volume.py --entries 20000          # CI smoke run
    CLEARANCE_BENCH_DATABASE_URL=postgresql://user@host/postgres python bench/volume.py

Prints JSON (and writes it to ``bench/results/volume.json``). The scratch database is dropped
afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import queue
import random
import statistics
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

import psycopg  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from audit import AuditStore, DecisionMembers, SigningKey, decision_fields, upgrade, verify_database  # noqa: E402
from audit.canonical import (  # noqa: E402
    GENESIS_PREV_HASH,
    canonical_bytes,
    entry_signing_input,
    format_time,
    plain,
)
from audit.checkpoints import build_checkpoint  # noqa: E402
from audit.entry import ENTRY_COLUMNS, queryable_columns  # noqa: E402
from audit.export import stream_jsonl  # noqa: E402
from audit.queries import EntryFilter, query_entries, stats  # noqa: E402
from policy import Caller, DecisionRequest, decide, load_policy  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parents[1]
CHUNK = 5_000
CHECKPOINT_EVERY = 1000
# Bulk loading a million synthetic entries: COPY (the service itself appends with pipelined INSERTs).
COPY_ENTRIES_SQL = f"COPY audit_entries ({', '.join(ENTRY_COLUMNS)}) FROM STDIN"
SEQ, DID, AT, PREV = (f"@@{name}@@" for name in ("SEQ", "DECISION_ID", "RECORDED_AT", "PREV_HASH"))

TASKS = ["summarization", "classification", "extraction", "qa", "code_generation", "writing",
         "reasoning", "agentic"]
TIERS = ["minimal", "standard", "standard", "regulated", "regulated", "critical"]
CLASSES = ["public", "internal", "internal", "confidential", "restricted"]
MODES = [["self_hosted", "vendor_api", "cloud"], ["self_hosted"], ["vendor_api", "cloud"],
         ["cloud"]]


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- 1. distinct decisions from the real engine -----------------------------------------------


@dataclass(frozen=True)
class Template:
    """One real decision as a canonical body with placeholders, and its derived columns."""

    body: bytes
    columns: dict[str, Any]


@dataclass(frozen=True)
class Decided:
    """One real decision of the policy engine: the policy input, the answer, who asked."""

    app_id: str
    caller_key_id: str
    policy_input: dict[str, Any]
    answer: dict[str, Any]  # the decision as answered (model_dump)
    context: dict[str, Any]
    revision: str
    engine: str


def decide_requests(count: int, *, seed: int, decision_id: str = DID) -> list[Decided]:
    """``count`` distinct, varied requests decided by the real engine (``rego/``): every app of
    the catalog, tiers, classifications, a dangerous capability in about one in ten."""
    policy = load_policy(REPO / "rego")
    apps = policy.bundle.catalog.apps
    rng = random.Random(seed)
    decided: list[Decided] = []
    while len(decided) < count:
        # Within the app's profile (apps.yaml), as the service requires: its tasks, one of its
        # sectors or none (all of them), its jurisdictions or one of them or none (all of them).
        app = rng.choice(apps)
        tasks = [t.value for t in app.tasks] if app.tasks is not None else TASKS
        where = rng.choice([None, list(app.jurisdictions), *([c] for c in app.jurisdictions)])
        workload = {
            "task": rng.choice(tasks), "quality_tier": rng.choice(["commodity", "advanced", "frontier"]),
            "regulatory_tier": rng.choice(TIERS), "data_classification": rng.choice(CLASSES),
            **({} if rng.random() < 0.3 else {"sector": rng.choice(app.sectors).value}),
            **({} if where is None else {"jurisdictions": where}),
            "dangerous_capability": "none" if rng.random() < 0.9 else rng.choice(
                ["cyber_defense", "cyber_offense", "autonomous_gui"]),
            "commercial": rng.random() < 0.8,
            "monthly_active_users": rng.choice([500, 20_000, 1_200_000, 650_000_000, 800_000_000]),
            "min_context_tokens": rng.choice([0, 8000, 32000, 128000]),
            "max_price_per_mtok": rng.choice([None, 0.5, 2.0, 5.0, 20.0]),
            "deployment_modes": rng.choice(MODES),
        }
        request = DecisionRequest.model_validate(
            {"app_id": app.id, "workload": workload,
             "context": {"request_id": f"req-{len(decided)}"}})
        caller_key = f"{rng.getrandbits(64):016x}"
        policy_input, decision = decide(policy, request, caller=Caller(key_id=caller_key, role="app"),
                                        decision_id=decision_id)
        decided.append(Decided(app_id=request.app_id, caller_key_id=caller_key, policy_input=policy_input,
                               answer=decision.model_dump(mode="json"),
                               context=request.context.model_dump(mode="json"), revision=policy.revision,
                               engine=policy.engine.name))
    return decided


def make_templates(count: int, *, key_id: str, seed: int) -> list[Template]:
    templates: list[Template] = []
    for d in decide_requests(count, seed=seed):
        members = DecisionMembers.encode(d.policy_input, d.answer)
        fields = plain(decision_fields(
            members=members, result=members.result(decision_id=DID, policy_revision=d.revision),
            app_id=d.app_id, caller_key_id=d.caller_key_id, policy_revision=d.revision,
            engine=d.engine, context=d.context, policy_git=None))
        doc = {**fields, "seq": SEQ, "recorded_at": AT, "key_id": key_id, "prev_hash": PREV}
        body = canonical_bytes(doc)
        columns = queryable_columns({**doc, "seq": 1, "recorded_at": format_time(datetime.now(UTC)),
                                     "decision_id": str(uuid.uuid4()), "prev_hash": "00" * 32})
        templates.append(Template(body=body, columns=columns))
    return templates


# -- 2. chain, sign, COPY ---------------------------------------------------------------------


def _uuid7(moment: datetime, rng: random.Random) -> str:
    ms = int(moment.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


_WORKER_KEY: Ed25519PrivateKey | None = None


def _init_signer(pem: bytes) -> None:
    global _WORKER_KEY  # one key per worker process, loaded once
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    _WORKER_KEY = key


def _sign_chunk(hashes: list[bytes]) -> list[bytes]:
    assert _WORKER_KEY is not None
    return [_WORKER_KEY.sign(entry_signing_input(h)) for h in hashes]


@dataclass
class Chunk:
    rows: list[tuple[Any, ...]]  # COPY rows without the signature (filled in later)
    hashes: list[bytes]


def build_chunks(
    templates: list[Template], *, entries: int, start: datetime, span: timedelta, key_id: str,
    seed: int,
) -> Iterator[Chunk]:
    rng = random.Random(seed)
    step = span / entries
    prev = GENESIS_PREV_HASH
    seq = 0
    while seq < entries:
        rows: list[tuple[Any, ...]] = []
        hashes: list[bytes] = []
        for _ in range(min(CHUNK, entries - seq)):
            seq += 1
            template = rng.choice(templates)
            moment = start + step * seq
            decision_id = _uuid7(moment, rng)
            at = format_time(moment)
            body = (template.body.replace(b'"' + SEQ.encode() + b'"', str(seq).encode())
                    .replace(DID.encode(), decision_id.encode())
                    .replace(AT.encode(), at.encode())
                    .replace(PREV.encode(), prev.hex().encode()))
            digest = hashlib.sha256(prev)
            digest.update(body)
            entry_hash = digest.digest()
            c = template.columns
            rows.append((
                seq, moment, c["kind"], uuid.UUID(decision_id), c["app_id"], c["caller_key_id"],
                c["outcome"], c["policy_revision"], c["engine"], key_id, prev, c["regulatory_tier"],
                c["sector"], c["models_allowed"], c["models_denied"], c["reason_codes"],
                c["provenances_allowed"], entry_hash, None, body,
            ))
            hashes.append(entry_hash)
            prev = entry_hash
        yield Chunk(rows=rows, hashes=hashes)


def load(url: str, *, entries: int, templates: list[Template], key: SigningKey, days: int,
         workers: int, seed: int) -> dict[str, Any]:
    store = AuditStore.from_url(url)
    store.register_key(key.public)
    head = store.head()
    end = datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(days=days)
    started = time.perf_counter()
    last: tuple[int, bytes, datetime] | None = None
    # Chunks are chained here (serially: each body holds the previous hash), signed by a pool
    # of processes, and COPYed by `workers` connections at once (row order does not matter).
    copies: queue.Queue[Any] = queue.Queue(maxsize=workers)
    failures: list[BaseException] = []
    threads = [threading.Thread(target=_copier, args=(url, copies, failures), daemon=True)
               for _ in range(workers)]
    for thread in threads:
        thread.start()
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("SELECT audit_ensure_partitions(%s, 3)", (days // 28 + 2,))
        conn.commit()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_signer, initargs=(key.private_pem(),)) as pool:
        for chunk in build_chunks(templates, entries=entries, start=start, span=end - start,
                                  key_id=key.key_id, seed=seed):
            if failures:
                break
            copies.put((chunk, pool.map_async(_sign_chunk, _split(chunk.hashes, workers))))
            row = chunk.rows[-1]
            last = (row[0], row[17], row[1])
        for _ in threads:
            copies.put(None)
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    assert last is not None
    with psycopg.connect(_libpq(url)) as conn:
        seq, head_hash, moment = last
        conn.execute("UPDATE audit_chain_head SET seq = %s, head_hash = %s, recorded_at = %s "
                     "WHERE id = 1", (seq, head_hash, moment))
        conn.commit()
    loaded = time.perf_counter() - started
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        vacuum_started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) audit_entries")
        vacuum = time.perf_counter() - vacuum_started
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    store.dispose()
    return {"entries": entries, "load_seconds": round(loaded, 1),
            "load_entries_per_second": round(entries / loaded),
            "vacuum_analyze_seconds": round(vacuum, 1),
            "database_size": size[0] if size else None, "log_id": head.log_id,
            "time_range": [format_time(start), format_time(end)]}


def _copier(url: str, copies: queue.Queue[Any], failures: list[BaseException]) -> None:
    try:
        with psycopg.connect(_libpq(url)) as conn:
            conn.execute("SET synchronous_commit = off")  # a bulk load; durability at the end
            while (item := copies.get()) is not None:
                _copy(conn, *item)
    except BaseException as exc:  # surfaced by load()
        failures.append(exc)
        while copies.get() is not None:  # keep the producer from blocking
            pass


def _split(items: list[bytes], parts: int) -> list[list[bytes]]:
    size = -(-len(items) // parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def _copy(conn: psycopg.Connection[Any], chunk: Chunk, signing: Any) -> None:
    signatures = [s for part in signing.get() for s in part]
    key_checkpoints = []
    with conn.cursor() as cur, cur.copy(COPY_ENTRIES_SQL) as copy:
        for row, signature in zip(chunk.rows, signatures, strict=True):
            copy.write_row((*row[:18], signature, *row[19:]))
            if row[0] % CHECKPOINT_EVERY == 0:
                key_checkpoints.append(row)
    for row in key_checkpoints:
        _checkpoint(conn, seq=row[0], head_hash=row[17], moment=row[1])
    conn.commit()


_CHECKPOINT_KEY: SigningKey | None = None
_LOG_ID: str | None = None


def _checkpoint(conn: psycopg.Connection[Any], *, seq: int, head_hash: bytes, moment: datetime) -> None:
    assert _CHECKPOINT_KEY is not None and _LOG_ID is not None
    checkpoint = build_checkpoint(log_id=_LOG_ID, seq=seq, head_hash=head_hash, recorded_at=moment,
                                  key=_CHECKPOINT_KEY)
    conn.execute(
        "INSERT INTO audit_checkpoints (seq, head_hash, recorded_at, key_id, body, signature) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (checkpoint.seq, checkpoint.head_hash, checkpoint.recorded_at, checkpoint.key_id,
         checkpoint.body, checkpoint.signature))


# -- 3. measurements --------------------------------------------------------------------------


def _timed(fn: Any, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(p95, 2),
            "max_ms": round(samples[-1], 2)}


def measure(url: str, *, repeat: int, export_rows: int, verify_entries: int, workers: int,
            entries: int, pages_only: bool = False) -> dict[str, Any]:
    store = AuditStore.from_url(url)
    now = datetime.now(UTC)
    week = now - timedelta(days=7)
    filters = {
        "no filter": EntryFilter(),
        "app_id": EntryFilter(app_id="claims-summariser"),
        "outcome=deny": EntryFilter(outcome="deny"),
        "reason_code=LICENCE_MAU_CAP": EntryFilter(reason_code="LICENCE_MAU_CAP"),
        "provenance=open_chinese & tier=regulated": EntryFilter(provenance="open_chinese",
                                                                regulatory_tier="regulated"),
        "model=gpt-5.4 denied & app_id": EntryFilter(model="gpt-5.4", model_status="denied",
                                                     app_id="claims-summariser"),
        "sector=defense": EntryFilter(sector="defense"),
        "app_id & reason_code=SAFETY_POST_TRAINING": EntryFilter(
            app_id="eu-patient-records", reason_code="SAFETY_POST_TRAINING"),
        "sector=public_sector & provenance=open_chinese (rare)": EntryFilter(
            sector="public_sector", provenance="open_chinese"),
        "last 7 days & app_id & outcome=allow": EntryFilter(start=week, app_id="internal-helpdesk",
                                                            outcome="allow"),
        "policy_revision (none match)": EntryFilter(policy_revision="sha256:" + "00" * 32),
    }
    pages = {}
    for name, filt in filters.items():
        query_entries(store, filt, limit=50)  # warm the cache, as a page that was just opened
        pages[name] = _timed(lambda filt=filt: query_entries(store, filt, limit=50), repeat)
    if pages_only:
        store.dispose()
        return {"first_page_50": pages}
    month = EntryFilter(start=now - timedelta(days=30))
    stats_runs = {
        "outcome per day, 30 days": _timed(
            lambda: stats(store, month, group_by=["outcome"], bucket="day"), 3),
        "provenance per day, 30 days": _timed(
            lambda: stats(store, month, group_by=["provenance"], bucket="day"), 3),
        "app x outcome, 30 days": _timed(lambda: stats(store, month, group_by=["app", "outcome"]), 3),
    }
    rows = min(export_rows, entries)
    export = EntryFilter(max_seq=rows)
    tracemalloc.start()
    started = time.perf_counter()
    size = 0
    lines = 0
    for chunk in stream_jsonl(store, export):
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines == rows, (lines, rows)
    exported = {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
                "megabytes": round(size / 1e6, 1), "python_peak_mib": round(peak / 2**20, 1)}
    head = store.head().seq
    from_seq = max(1, head - min(verify_entries, head) + 1)
    verification = {}
    for n in sorted({1, workers}):
        started = time.perf_counter()
        result = verify_database(store, from_seq=from_seq, **({'workers': n} if n > 1 else {}))
        seconds = time.perf_counter() - started
        assert result.valid, result
        verification[f"workers={n}"] = {"entries": result.checked, "seconds": round(seconds, 2),
                                        "entries_per_second": round(result.checked / seconds)}
    store.dispose()
    return {"first_page_50": pages, "stats": stats_runs, "export_jsonl": exported,
            "verification": verification}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--templates", type=int, default=300, help="distinct decisions")
    parser.add_argument("--days", type=int, default=60, help="time span of the entries")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=50, help="runs per filtered query")
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--verify-entries", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", metavar="URL", help="skip loading: measure this loaded database")
    parser.add_argument("--pages-only", action="store_true", help="measure only the first pages")
    args = parser.parse_args()

    global _CHECKPOINT_KEY, _LOG_ID
    server = os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL)
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    name = None
    if args.reuse:
        url = args.reuse
        entries = AuditStore.from_url(url).head().seq
    else:
        name = f"clearance_volume_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            report["machine"]["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        key = SigningKey.generate()
        _CHECKPOINT_KEY, _LOG_ID = key, AuditStore.from_url(url).head().log_id
        started = time.perf_counter()
        templates = make_templates(args.templates, key_id=key.key_id, seed=args.seed)
        sizes = sorted(len(t.body) for t in templates)
        report["templates"] = {"count": len(templates), "seconds": round(time.perf_counter() - started, 1),
                               "body_bytes_median": sizes[len(sizes) // 2], "body_bytes_max": sizes[-1]}
        report["load"] = load(url, entries=args.entries, templates=templates, key=key, days=args.days,
                              workers=args.workers, seed=args.seed)
        entries = args.entries
        print(json.dumps(report["load"]), file=sys.stderr)
    try:
        report["measurements"] = measure(url, repeat=args.repeat, export_rows=args.export_rows,
                                         verify_entries=args.verify_entries, workers=args.workers,
                                         entries=entries, pages_only=args.pages_only)
    finally:
        if name is not None and not args.keep:
            with psycopg.connect(_libpq(server), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif name is not None:
            report["database_url"] = url
    text = json.dumps(report, indent=2)
    print(text)
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "volume.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
