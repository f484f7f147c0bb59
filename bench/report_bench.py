"""The period report at volume: time each phase of ``clearance audit report`` over N entries.

Loads N valid, chained, signed entries with ``bench/volume.py``'s loader (or reuses a loaded
database), then builds the report of the whole period with ``audit.report.build_report`` — the
function behind the CLI and ``GET /v1/audit/report`` — and times its phases from its progress
callback:

1. gathering: every count through ``audit.queries.stats`` / ``query_entries`` and the bodies
   shown (reloads, flagged served routes, key events) through the export stream; at the same
   time as
2. evidence pack: ``audit.pack.write_pack`` of the period (every entry with its signed bytes);
3. verifying: ``verify_database`` over the pack's seq range (``--workers`` processes, as the
   CLI uses one per CPU);
4. render and pdf: the HTML, report.json, and headless Chromium's print to PDF.

    python bench/report_bench.py --entries 1000000             # load 1M (≈15 min on 2 cores), report
    python bench/volume.py --entries 1000000 --keep --pages-only   # or load once, keep …
    python bench/report_bench.py --reuse postgresql://postgres@127.0.0.1:5432/clearance_volume_…
    python bench/report_bench.py --reuse … --gathering-only      # step 1 alone, step by step

Prints JSON (and writes it to ``bench/results/report.json``). The report directory is removed
afterwards unless ``--out DIR``; a scratch database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from audit import AuditStore, SigningKey, upgrade  # noqa: E402
from audit.report import build_report, find_browser  # noqa: E402
from audit.report.gather import GATHER_STEPS  # noqa: E402
import bench.volume as volume  # noqa: E402
from bench.volume import DEFAULT_URL, REPO, _libpq, load, make_templates  # noqa: E402


def _period(store: AuditStore) -> tuple[Any, Any]:
    with store.engine.connect() as conn:
        low, high = conn.execute(text("SELECT min(recorded_at), max(recorded_at) FROM audit_entries")).one()
    return low, high + timedelta(microseconds=1)


def measure(url: str, *, out: Path | None, pdf: bool, workers: int) -> dict[str, Any]:
    store = AuditStore.from_url(url, pool_size=2)
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

    started = time.perf_counter()
    try:
        built = build_report(store, target, start=start, end=end, pdf=pdf, progress=progress,
                             workers=workers)
        total = time.perf_counter() - started
        pack_bytes = sum(p.stat().st_size for p in (target / "evidence").iterdir())
        pdf_bytes = built.pdf.stat().st_size if built.pdf else None
        html_bytes = built.html.stat().st_size
    finally:
        if out is None:
            shutil.rmtree(target.parent, ignore_errors=True)
        store.dispose()
    report = built.report
    assert report.verification is not None and report.verification.valid, report.verification
    # Gathering and the pack run at once from the start; verification follows both, then the PDF.
    gathered = marks["gathering:end"] - started
    packed = marks["evidence pack:end"] - started
    verified = marks["verifying:end"] - max(marks["gathering:end"], marks["evidence pack:end"])
    phases = {"gathering (concurrent with the pack)": round(gathered, 2),
              "evidence pack (concurrent with gathering)": round(packed, 2),
              "verifying": round(verified, 2)}
    if "pdf:end" in marks:
        phases["render and pdf"] = round(marks["pdf:end"] - marks["verifying:end"], 2)
    entries = report.entries_total
    return {
        "entries": entries,
        "period": [report.period_from, report.period_to],
        "seconds_total": round(total, 1),
        "phases_seconds": phases,
        "gathering_steps_seconds": {label: round(t - (steps[i - 1] if i else started), 2)
                                    for i, (label, t) in enumerate(zip(GATHER_STEPS, steps))},
        "verification_workers": workers,
        "gathering_entries_per_second": round(entries / gathered),
        "pack_entries": report.pack_entries,
        "pack_megabytes": round(pack_bytes / 1e6, 1),
        "html_kilobytes": round(html_bytes / 1e3, 1),
        "pdf_kilobytes": round(pdf_bytes / 1e3, 1) if pdf_bytes else None,
        "verified_entries": report.verification.checked,
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
    parser.add_argument("--templates", type=int, default=300, help="distinct decisions")
    parser.add_argument("--days", type=int, default=60, help="time span of the entries")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", metavar="URL", help="skip loading: report on this loaded database")
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
        name = f"clearance_report_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        key = SigningKey.generate()
        # The loader signs a checkpoint every 1000 entries with these (bench/volume.py).
        volume._CHECKPOINT_KEY, volume._LOG_ID = key, AuditStore.from_url(url).head().log_id
        templates = make_templates(args.templates, key_id=key.key_id, seed=args.seed)
        result["load"] = load(url, entries=args.entries, templates=templates, key=key, days=args.days,
                              workers=args.workers, seed=args.seed)
        print(json.dumps(result["load"]), file=sys.stderr)
    try:
        if args.gathering_only:
            result["gathering"] = measure_gathering(url)
        else:
            result["report"] = measure(url, out=args.out, pdf=not args.no_pdf, workers=args.workers)
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
