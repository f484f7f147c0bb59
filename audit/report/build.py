"""A period report on disk: report.html, report.pdf, report.json and the evidence pack.

::

    DIR/report.html    self-contained (inline CSS and SVG): opens offline
    DIR/report.pdf     the HTML printed by headless Chromium
    DIR/report.json    the same data for machines (ReportData)
    DIR/evidence/      the evidence pack of the period (audit/pack.py); its seq range is verified
                       in the database (columns included) before the report is written

The report names the pack's manifest SHA-256 and the checkpoint that seals it, so it cannot be
separated from its evidence.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ExportError
from ..filters import EntryFilter
from ..pack import write_pack
from ..queries import query_entries
from ..store import AuditStore
from ..tlog.note import Ed25519Verifier, Verifier
from .gather import gather_report
from .model import ReportData
from .pdf import print_pdf
from .render import render_html
from .verification import (
    BackgroundVerification,
    CheckpointSource,
    checkpoint_from_pack,
    manifest_sha256,
    verify_section,
)

__all__ = ["PACK_DIR", "BuiltReport", "PhaseProgress", "build_report"]

PACK_DIR = "evidence"
# (phase, done, total): phases are "gathering", "evidence pack", "verifying", "pdf".
PhaseProgress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class BuiltReport:
    report: ReportData
    html: Path
    pdf: Path | None
    data: Path
    pack: Path | None


def build_report(
    store: AuditStore,
    out_dir: str | os.PathLike[str],
    *,
    start: datetime,
    end: datetime,
    pdf: bool = True,
    browser: Path | None = None,
    trusted: Sequence[Verifier] = (),
    checkpoint_source: CheckpointSource = checkpoint_from_pack,
    progress: PhaseProgress | None = None,
    workers: int = 1,
) -> BuiltReport:
    """Gather, pack, verify, render and print the report of ``[start, end)`` into ``out_dir``
    (a new or empty directory). A period without entries gives a report saying so, no pack.

    The period's end is capped at the moment the report starts, so that the counts and the pack
    describe the same entries when the period reaches into the future ("this month so far").

    :param trusted: the pinned verifier keys the period's range is verified with.
    :param workers: CPUs the report may use. From 2, the period's range is verified in a child
        process while the pack is written (the CLI); with 1, after it, in this thread (the
        service, on the auditor's thread).
    """
    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"{target} exists and is not an empty directory; choose a new one")
    target.mkdir(parents=True, exist_ok=True)

    def phase(name: str) -> Callable[[int, int | None], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(name, done, total)

    now = datetime.now(UTC)
    if start < now < end:
        end = now
    gathering = phase("gathering")
    # The counts (PostgreSQL's work), the pack (this process's) and, with two CPUs or more, the
    # verification (a child process's) read the same entries: done at once.
    started = _start_verification(store, start, end, trusted, phase("verifying")) if workers > 1 else None
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-gather") as pool:
            gathered = pool.submit(
                gather_report, store, start=start, end=end,
                progress=(lambda _label, done, total: gathering(done, total)) if gathering else None)
            pack: Path | None = target / PACK_DIR
            try:
                manifest = write_pack(store, target / PACK_DIR, start=start, end=end,
                                      progress=phase("evidence pack"))
            except ExportError:
                if not gathered.result().empty:
                    raise
                pack = None  # no entries in the period: nothing to pack (the report says so)
            report = gathered.result()
        if pack is not None:
            report.pack_dir = PACK_DIR
            report.pack_entries = int(manifest["entries"])
            report.pack_manifest_sha256 = manifest_sha256(pack)
            report.verification = verify_section(store, pack, pack_name=PACK_DIR, trusted=trusted,
                                                 checkpoint_source=checkpoint_source, progress=phase("verifying"),
                                                 started=started)
    finally:
        if started is not None:
            started.cancel()  # done already, or not wanted (an error, an empty period)
    html = target / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    data = target / "report.json"
    data.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    pdf_path: Path | None = None
    if pdf:
        if progress is not None:
            progress("pdf", 0, 1)
        pdf_path = target / "report.pdf"
        print_pdf(html, pdf_path, browser=browser)
        if progress is not None:
            progress("pdf", 1, 1)
    return BuiltReport(report=report, html=html, pdf=pdf_path, data=data, pack=pack)


def _start_verification(store: AuditStore, start: datetime, end: datetime, trusted: Sequence[Verifier],
                        progress: Callable[[int, int | None], None] | None) -> BackgroundVerification | None:
    """Verification of the period's seq range, started in a child process before the pack is
    written (None for a period without entries). The pack reads its range in its own snapshot
    a moment later: ``verify_section`` uses this verdict only if the ranges are the same."""
    if not BackgroundVerification.possible(trusted):
        return None
    period = EntryFilter(start=start, end=end)
    first = query_entries(store, period, limit=1, order="asc").items
    last = query_entries(store, period, limit=1, order="desc").items
    if not first or not last:
        return None
    keys = [v for v in trusted if isinstance(v, Ed25519Verifier)]
    return BackgroundVerification(store, trusted=keys, from_seq=first[0]["seq"], to_seq=last[0]["seq"],
                                  progress=progress)
