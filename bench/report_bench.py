"""The period report at volume: time each phase of ``clearance audit report`` over N v2 leaves.

1. Load: a v2 transparency log of N leaves spread over ``--days`` days, built here and written
   with ``COPY`` — what the writer (``audit/log.py``) would have stored, faster:

   - a few hundred distinct decisions of the real policy engine (``rego/``; ``bench/volume.py``'s
     requests: every app, tiers, about one in ten asking for a dangerous capability), each under
     three policy revisions (accepted reloads at 1/3 and 2/3 of the period) — so the input blobs
     are shared across revisions and the result blobs across the decisions of a workload;
   - leaves built as the writer builds them (``prepare_fields`` → ``draft_leaf`` → RFC 8785
     bytes with seq, time and key), a fresh decision id and request id each; ~7 % are served-route
     reports of the decision just made (1 in 50 of them flagged: a route the decision did not
     clear); refused reloads and key events (API keys created and revoked) now and then;
   - batches of 1–200 leaves (mean ~100, as under steady load), one time per batch, **one
     signed checkpoint per batch**, the level-8/16 subtrees and the head computed with
     ``audit.tlog.merkle.Frontier`` — so the log verifies (``verify_log``) with the bench's key,
     which is derived from ``--seed`` (``--reuse`` finds it again);
   - the leaves' indexes and foreign keys are dropped during the COPY and built again after it.

2. Report: the whole period with ``audit.report.build_report`` — the function behind
   ``clearance audit report`` and ``GET /v1/audit/report`` — timing each phase from its progress
   callback (gathering, evidence pack, verification, render and PDF); ``--gathering-only`` times
   the report's own reading, step by step.

    python bench/report_bench.py --entries 1000000 --keep   # load 1M (~4 min on 2 cores), report
    python bench/report_bench.py --reuse postgresql://postgres@127.0.0.1:5432/report_…
    python bench/report_bench.py --reuse … --gathering-only
    python bench/report_bench.py --entries 20000            # smoke run (load, report, drop)

Prints JSON (and writes it to ``bench/results/report.json``). The report directory is removed
afterwards unless ``--out DIR``; the scratch database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

import psycopg  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from audit import AuditStore, DecisionMembers, SigningKey, decision_fields, upgrade  # noqa: E402
from audit.canonical import canonical_bytes, format_time  # noqa: E402
from audit.chain import encode_members  # noqa: E402
from audit.entry import (  # noqa: E402
    BLOB_FACETS,
    Blob,
    draft_leaf,
    key_event_fields,
    prepare_fields,
    reload_fields,
    served_fields,
)
from audit.report import build_report, find_browser  # noqa: E402
from audit.report.gather import GATHER_STEPS  # noqa: E402
from audit.tlog.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from audit.tlog.merkle import Frontier, Node, leaf_hash  # noqa: E402
from audit.tlog.tiles import TILE_HEIGHT  # noqa: E402
from audit.trust import log_signer, log_verifier  # noqa: E402
from bench.volume import DEFAULT_URL, REPO, Decided, _libpq, decide_requests  # noqa: E402

# Placeholders in a leaf template, replaced per leaf by canonical literals of the same JSON type
# (the seq is a string placeholder replaced with its quotes by a number): the bytes stay RFC 8785.
SEQ = b'"@@SEQ@@"'
AT = b"@@RECORDED_AT@@"
REQ = b"@@REQUEST_ID@@"
DID = "00000000-0000-7000-8000-00000000d1d0"  # prepare_fields wants a UUID
SERVED_DID = "00000000-0000-7000-8000-0000000005e0"
SERVED_SEQ = b'"@@DECISION_SEQ@@"'
REVISIONS = 3
SERVED_SHARE = 0.07
FLAGGED_SHARE = 0.02  # of the served reports
MAX_BATCH = 200
COPY_LEAVES_SQL = ("COPY audit_leaves (seq, recorded_at, kind, decision_id, app_id, outcome, input_sha256, "
                   "result_sha256, leaf_hash, body) FROM STDIN")


def bench_key(seed: int) -> SigningKey:
    """The log's signing key, the same for a seed: a reused database is verified with it."""
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"clearance report bench %d" % seed).digest())
    return SigningKey.from_private(private, source="bench")


# -- leaf templates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafTemplate:
    """A leaf body in RFC 8785 with placeholders, its constant columns and its blobs."""

    body: bytes
    kind: str
    app_id: str | None
    outcome: str | None
    blobs: tuple[Blob, ...]
    input_sha256: bytes | None
    result_sha256: bytes | None


def _template(fields: dict[str, Any], *, key_id: str) -> LeafTemplate:
    draft = draft_leaf(encode_members(prepare_fields(fields)))  # as AuditWriter.append
    members = draft.members
    body = canonical_bytes({**members, "seq": "@@SEQ@@", "recorded_at": AT.decode(), "key_id": key_id})
    digest = {name: bytes.fromhex(members[name]) if members[name] else None
              for name in ("input_sha256", "result_sha256")}
    return LeafTemplate(body=body, kind=fields["kind"], app_id=fields.get("app_id"), outcome=fields.get("outcome"),
                        blobs=draft.blobs, input_sha256=digest["input_sha256"], result_sha256=digest["result_sha256"])


def _revision(n: int) -> str:
    return "sha256:" + hashlib.sha256(b"bench policy revision %d" % n).hexdigest()


def _git(n: int) -> dict[str, Any]:
    return {"commit": hashlib.sha1(b"bench commit %d" % n).hexdigest(), "dirty": False, "path": "rego"}


def decision_templates(decided: list[Decided], revision: int, *, key_id: str) -> list[LeafTemplate]:
    out = []
    for d in decided:
        members = DecisionMembers.encode(d.policy_input, d.answer)
        rev = _revision(revision)
        out.append(_template(decision_fields(
            members=members, result=members.result(decision_id=DID, policy_revision=rev), app_id=d.app_id,
            caller_key_id=d.caller_key_id, policy_revision=rev, engine=d.engine,
            context={**d.context, "request_id": REQ.decode()}, policy_git=_git(revision)), key_id=key_id))
    return out


def served_template(decided: Decided, revision: int, *, flagged: bool, key_id: str) -> LeafTemplate | None:
    """A gateway's report on the decision just made: a cleared route, or (flagged) a denied one."""
    routes = decided.answer["denied"] if flagged else decided.answer["allowed"]
    if not routes:
        return None
    route = routes[0]
    reasons = [{"code": r["code"]} for r in route.get("reasons", [])] if flagged else []
    return _template(served_fields(
        app_id=decided.app_id, caller_key_id="9a0b1c2d3e4f5061", policy_revision=_revision(revision),
        engine=decided.engine,
        context={"request_id": REQ.decode(), "gateway": {"name": "litellm"}},
        served={"decision_id": SERVED_DID, "decision_seq": "@@DECISION_SEQ@@", "model": route["model"],
                "deployment": route.get("deployment"), "cleared": not flagged, "rank": None if flagged else 1,
                "reasons": reasons, "flag": "route_not_cleared" if flagged else None}), key_id=key_id)


def reload_template(revision: int, *, accepted: bool, key_id: str) -> LeafTemplate:
    old = revision - 1 if accepted else revision
    return _template(reload_fields(
        caller_key_id="0123456789abcdef", policy_revision=_revision(revision if accepted else old), engine="regorus",
        policy_git=_git(revision if accepted else old),
        reload={"outcome": "accepted" if accepted else "refused", "requested_by": "admin-key",
                "old_revision": _revision(old), "new_revision": _revision(revision) if accepted else None,
                "old_git": _git(old), "new_git": _git(revision) if accepted else None,
                "errors": [] if accepted else [{"message": "rego parse error in clearance.rego"}]}), key_id=key_id)


def key_template(n: int, *, key_id: str) -> LeafTemplate:
    event = "api_key_revoked" if n % 3 == 2 else "api_key_created"
    return _template(key_event_fields(event=event, key_id=f"{n:016x}", actor="ops@bench", role="app",
                                      app_id="internal-helpdesk"), key_id=key_id)


# -- the log ----------------------------------------------------------------------------------


def _uuid7(moment: datetime, rng: random.Random) -> str:
    ms = int(moment.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


@dataclass
class Batch:
    rows: list[tuple[Any, ...]]  # COPY rows of audit_leaves
    hashes: list[bytes]
    moment: datetime


def leaves(decided: list[Decided], *, entries: int, start: datetime, span: timedelta, key_id: str,
           seed: int, blobs: dict[bytes, Blob]) -> Iterator[Batch]:
    """The log's leaves in batches, in seq order: decisions and served reports, the policy
    reloads (accepted at each third of the period, one refused in each third) and key events.
    Once exhausted, ``blobs`` holds every blob the leaves name."""
    rng = random.Random(seed)
    decisions = [decision_templates(decided, r, key_id=key_id) for r in range(REVISIONS)]
    served: dict[tuple[int, int, bool], LeafTemplate | None] = {}
    # Rare entries at fixed positions: seq -> template.
    rare: dict[int, LeafTemplate] = {}
    for r in range(1, REVISIONS):
        rare[entries * r // REVISIONS] = reload_template(r, accepted=True, key_id=key_id)
    for r in range(REVISIONS):
        rare[entries * (2 * r + 1) // (2 * REVISIONS) + 1] = reload_template(r, accepted=False, key_id=key_id)
    for n in range(9):
        rare[entries * (2 * n + 1) // 18 + 2] = key_template(n, key_id=key_id)
    seq = 0
    last_decision: tuple[int, str, int, int] | None = None  # seq, decision id, template index, revision
    while seq < entries:
        size = min(entries - seq, rng.randint(1, MAX_BATCH))
        moment = start + span * (seq / entries)
        at = format_time(moment).encode()
        rows: list[tuple[Any, ...]] = []
        hashes: list[bytes] = []
        for _ in range(size):
            seq += 1
            revision = min(REVISIONS - 1, (seq - 1) * REVISIONS // entries)
            template = rare.get(seq)
            decision_id: str | None = None
            body: bytes
            if template is None and last_decision is not None and rng.random() < SERVED_SHARE:
                d_seq, d_id, index, d_rev = last_decision
                flagged = rng.random() < FLAGGED_SHARE
                key = (index, d_rev, flagged)
                if key not in served:
                    served[key] = served_template(decided[index], d_rev, flagged=flagged, key_id=key_id)
                template = served[key]
                if template is not None:
                    body = (template.body.replace(SERVED_DID.encode(), d_id.encode())
                            .replace(SERVED_SEQ, str(d_seq).encode()))
            if template is None:
                index = rng.randrange(len(decided))
                template = decisions[revision][index]
                decision_id = _uuid7(moment, rng)
                body = template.body.replace(DID.encode(), decision_id.encode())
                last_decision = (seq, decision_id, index, revision)
            elif template.kind != "served":
                body = template.body
            body = body.replace(SEQ, str(seq).encode()).replace(AT, at).replace(REQ, b"req-%d" % seq)
            digest = leaf_hash(body)
            rows.append((seq, moment, template.kind, decision_id, template.app_id, template.outcome,
                         template.input_sha256, template.result_sha256, digest, body))
            hashes.append(digest)
        yield Batch(rows=rows, hashes=hashes, moment=moment)
    for group in (*decisions, [t for t in served.values() if t is not None], list(rare.values())):
        for template in group:
            for blob in template.blobs:
                blobs.setdefault(blob.sha256, blob)


def load(url: str, *, entries: int, templates: int, days: int, seed: int) -> dict[str, Any]:
    key = bench_key(seed)
    store = AuditStore.from_url(url)
    origin = store.log_origin()
    store.dispose()
    signer = log_signer(key, origin)
    started = time.perf_counter()
    decided = decide_requests(templates, seed=seed)
    decided_seconds = time.perf_counter() - started
    end = datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(days=days)
    frontier = Frontier()
    checkpoints: list[tuple[int, bytes, str, datetime]] = []
    nodes: list[tuple[int, int, bytes]] = []
    blobs: dict[bytes, Blob] = {}
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("SET synchronous_commit = off")  # a bulk load; the commit at the end is durable
        # Build the leaves' indexes and foreign keys once after the COPY instead of row by row.
        indexes = [r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_leaves' AND indexname <> 'audit_leaves_pkey'")]
        foreign = conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                               "WHERE conrelid = 'audit_leaves'::regclass AND contype = 'f'").fetchall()
        for name, _ in foreign:
            conn.execute(f"ALTER TABLE audit_leaves DROP CONSTRAINT {name}")
        for name in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_leaves' "
                                 "AND indexname <> 'audit_leaves_pkey'").fetchall():
            conn.execute(f"DROP INDEX {name[0]}")
        copied = time.perf_counter()
        with conn.cursor() as cur, cur.copy(COPY_LEAVES_SQL) as copy:
            for batch in leaves(decided, entries=entries, start=start, span=end - start, key_id=key.key_id,
                                seed=seed, blobs=blobs):
                grown: list[tuple[Node, bytes]] = []
                frontier = frontier.grow(batch.hashes, nodes=grown)
                nodes += [(n.level, n.index, h) for n, h in grown if n.level and n.level % TILE_HEIGHT == 0]
                root = frontier.root()
                checkpoints.append((frontier.size, root, sign_checkpoint(Checkpoint(origin, frontier.size, root),
                                                                         [signer]), batch.moment))
                for row in batch.rows:
                    copy.write_row(row)
        copy_seconds = time.perf_counter() - copied
        with conn.cursor() as cur:
            with cur.copy(f"COPY audit_blobs (sha256, data, {', '.join(BLOB_FACETS)}) FROM STDIN") as copy:
                for blob in blobs.values():
                    copy.write_row((blob.sha256, blob.data, *blob.facets))
            with cur.copy("COPY audit_tlog_nodes (level, idx, hash) FROM STDIN") as copy:
                for node in nodes:
                    copy.write_row(node)
            with cur.copy("COPY audit_tlog_checkpoints (size, root, note, created_at) FROM STDIN") as copy:
                for checkpoint in checkpoints:
                    copy.write_row(checkpoint)
            cur.execute("UPDATE audit_tlog_head SET size = %s, root = %s, frontier = %s, recorded_at = %s "
                        "WHERE id = 1", (frontier.size, frontier.root(), frontier.to_bytes(), checkpoints[-1][3]))
        indexed = time.perf_counter()
        for definition in indexes:
            conn.execute(definition)
        for name, definition in foreign:
            conn.execute(f"ALTER TABLE audit_leaves ADD CONSTRAINT {name} {definition}")
        index_seconds = time.perf_counter() - indexed
        conn.commit()
        conn.autocommit = True
        vacuumed = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        vacuum_seconds = time.perf_counter() - vacuumed
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
        kinds = dict(conn.execute("SELECT kind, count(*) FROM audit_leaves GROUP BY kind").fetchall())
        body = conn.execute("SELECT avg(length(body))::int FROM audit_leaves").fetchone()
    return {"entries": entries, "by_kind": kinds, "decided_requests": len(decided),
            "distinct_blobs": len(blobs), "checkpoints": len(checkpoints),
            "mean_leaf_body_bytes": body[0] if body else None,
            "decide_seconds": round(decided_seconds, 1), "copy_seconds": round(copy_seconds, 1),
            "index_seconds": round(index_seconds, 1), "vacuum_analyze_seconds": round(vacuum_seconds, 1),
            "load_seconds": round(time.perf_counter() - started, 1), "database_size": size[0] if size else None,
            "time_range": [format_time(start), format_time(end)]}


# -- the report -------------------------------------------------------------------------------


def _period(store: AuditStore) -> tuple[Any, Any]:
    with store.engine.connect() as conn:
        low, high = conn.execute(text("SELECT min(recorded_at), max(recorded_at) FROM audit_leaves")).one()
    return low, high + timedelta(microseconds=1)


def _trusted(store: AuditStore, seed: int) -> list[Any]:
    return [log_verifier(bench_key(seed).public, store.log_origin())]


def measure(url: str, *, out: Path | None, pdf: bool, seed: int, workers: int) -> dict[str, Any]:
    store = AuditStore.from_url(url, pool_size=4)
    start, end = _period(store)
    target = out or Path(tempfile.mkdtemp(prefix="clearance-report-bench-")) / "report"
    marks: dict[str, float] = {}
    steps: list[float] = []

    def progress(phase: str, done: int, total: int | None) -> None:
        now = time.perf_counter()
        marks.setdefault(f"{phase}:start", now)
        marks[f"{phase}:end"] = now
        if phase == "gathering" and done > len(steps):
            steps.append(now)

    cpu = os.times()
    started = time.perf_counter()
    try:
        built = build_report(store, target, start=start, end=end, pdf=pdf, progress=progress,
                             trusted=_trusted(store, seed), workers=workers)
        total = time.perf_counter() - started
        cpu_after = os.times()
        pack_bytes = sum(p.stat().st_size for p in (target / "evidence").iterdir())
        pdf_bytes = built.pdf.stat().st_size if built.pdf else None
        html_bytes = built.html.stat().st_size
    finally:
        if out is None:
            shutil.rmtree(target.parent, ignore_errors=True)
        store.dispose()
    report = built.report
    assert report.verification is not None and report.verification.valid, report.verification
    phases = {f"{phase} (from start to its end)": round(marks[f"{phase}:end"] - started, 2)
              for phase in ("gathering", "evidence pack", "verifying", "pdf") if f"{phase}:end" in marks}
    phases.update({f"{phase} (its own span)": round(marks[f"{phase}:end"] - marks[f"{phase}:start"], 2)
                   for phase in ("gathering", "evidence pack", "verifying", "pdf") if f"{phase}:end" in marks})
    entries = report.entries_total
    return {
        "entries": entries,
        "period": [report.period_from, report.period_to],
        "seconds_total": round(total, 1),
        "this_process_cpu_seconds": round((cpu_after.user + cpu_after.system) - (cpu.user + cpu.system), 1),
        "children_cpu_seconds": round((cpu_after.children_user + cpu_after.children_system)
                                      - (cpu.children_user + cpu.children_system), 1),
        "phases_seconds": phases,
        "gathering_steps_seconds": {label: round(t - (steps[i - 1] if i else started), 2)
                                    for i, (label, t) in enumerate(zip(GATHER_STEPS, steps))},
        "workers": workers,
        "load_average_1_5_15": [round(x, 1) for x in os.getloadavg()],
        "pack_entries": report.pack_entries,
        "pack_megabytes": round(pack_bytes / 1e6, 1),
        "html_kilobytes": round(html_bytes / 1e3, 1),
        "pdf_kilobytes": round(pdf_bytes / 1e3, 1) if pdf_bytes else None,
        "verified_entries": report.verification.checked,
        "dangerous_capability": report.dangerous_capability,
        "by_kind": report.by_kind,
    }


def measure_gathering(url: str) -> dict[str, Any]:
    """Only the report's own reading (no pack, no verification, no PDF), step by step."""
    from audit.report import gather_report

    store = AuditStore.from_url(url, pool_size=2)
    start, end = _period(store)
    times: list[float] = []
    started = time.perf_counter()
    report = gather_report(store, start=start, end=end,
                           progress=lambda _label, _done, _total: times.append(time.perf_counter()))
    total = time.perf_counter() - started
    store.dispose()
    return {"entries": report.entries_total, "gathering_seconds": round(total, 1),
            "gathering_entries_per_second": round(report.entries_total / total),
            "steps_seconds": {label: round(t - (times[i - 1] if i else started), 2)
                              for i, (label, t) in enumerate(zip(GATHER_STEPS, times))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--templates", type=int, default=300, help="distinct decisions (per policy revision)")
    parser.add_argument("--days", type=int, default=60, help="time span of the entries")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="build_report's workers (the CLI passes the CPU count)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--name", help="name of the scratch database (default report_<random>)")
    parser.add_argument("--reuse", metavar="URL", help="skip loading: report on this loaded database")
    parser.add_argument("--load-only", action="store_true", help="load (with --keep), no report")
    parser.add_argument("--out", type=Path, help="keep the report in this new directory")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF (no Chromium)")
    parser.add_argument("--gathering-only", action="store_true",
                        help="time only the report's own reading (no pack, verification or PDF)")
    args = parser.parse_args()

    server = os.environ.get("CLEARANCE_BENCH_DATABASE_URL", DEFAULT_URL)
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "chromium": str(find_browser())}}
    name = None
    if args.reuse:
        url = args.reuse
    else:
        name = args.name or f"report_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        result["load"] = load(url, entries=args.entries, templates=args.templates, days=args.days, seed=args.seed)
        print(json.dumps(result["load"]), file=sys.stderr, flush=True)
    try:
        if args.load_only:
            pass
        elif args.gathering_only:
            result["gathering"] = measure_gathering(url)
        else:
            result["report"] = measure(url, out=args.out, pdf=not args.no_pdf, seed=args.seed,
                                       workers=args.workers)
    finally:
        if name is not None and not args.keep:
            with psycopg.connect(_libpq(server), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif name is not None:
            result["database_url"] = url
    output = json.dumps(result, indent=2)
    print(output)
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / ("report_gathering.json" if args.gathering_only else "report.json")).write_text(output + "\n")


if __name__ == "__main__":
    main()
