"""``clearance audit report``: a period's report for auditors (audit/report/), with a progress bar."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli_common import audit_store, clean_errors, fail

PHASES = ("gathering", "evidence pack", "verifying", "pdf")


@contextmanager
def _phases(enabled: bool) -> Iterator[Any]:
    """One rich progress bar per phase of the report, on stderr."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


def report(
    from_: Annotated[str, typer.Option("--from", help="Start of the period (RFC 3339, inclusive).")],
    to: Annotated[str, typer.Option("--to", help="End of the period (RFC 3339, exclusive).")],
    out: Annotated[Path, typer.Option("--out", help="A new directory for report.html, report.pdf, "
                                                    "report.json and evidence/.")],
    pdf: Annotated[bool, typer.Option(help="Print report.pdf with headless Chromium.")] = True,
    pubkey: Annotated[Path | None, typer.Option(
        "--pubkey", help="Verify the period with these published keys (keyring JSON or PEM; default: "
                         "the pinned keys, CLEARANCE_TRUSTED_KEYS).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Write a period's compliance report: HTML and PDF, backed by its verified evidence pack."""
    from pydantic import ValidationError

    from api.filters import AuditFilters
    from api.cli_common import pinned_for_cli
    from api.settings import Settings
    from audit.pack import load_trusted_keys
    from audit.report import build_report
    from audit.trust import trusted_verifiers

    try:
        period = AuditFilters.model_validate({"from": from_, "to": to})
    except ValidationError as exc:  # exit 2 naming the option, as the other audit commands do
        fail("invalid option: " + "; ".join(
            f"--{'from' if e['loc'] and e['loc'][0] in ('from', 'from_') else 'to'}: {e['msg']}"
            for e in exc.errors()), 2)
    import os

    with clean_errors():
        trusted = (list(trusted_verifiers(load_trusted_keys(pubkey).values(), Settings().log_origin))
                   if pubkey is not None else pinned_for_cli())
        with audit_store() as store, _phases(progress and not as_json) as update:
            built = build_report(store, out, start=period.from_, end=period.to, pdf=pdf,
                                 trusted=trusted, progress=update, workers=os.cpu_count() or 1)
    data = built.report
    verdict = data.verification
    summary = {
        "out": str(out), "html": str(built.html), "pdf": str(built.pdf) if built.pdf else None,
        "entries": data.entries_total, "pack": str(built.pack) if built.pack else None,
        "pack_manifest_sha256": data.pack_manifest_sha256,
        "valid": verdict.valid if verdict else None,
        "checkpoint_seq": verdict.checkpoint.seq if verdict and verdict.checkpoint else None,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    elif data.empty:
        typer.echo(f"report {out}: no entries were recorded in this period", err=True)
    else:
        assert verdict is not None
        typer.echo(f"report {out}: {data.entries_total} entries; "
                   + (f"valid ({verdict.checked} entries verified)" if verdict.valid else
                      f"INVALID at seq {verdict.first_bad_seq} ({verdict.check}): {verdict.reason}")
                   + f"; evidence pack manifest sha256 {data.pack_manifest_sha256}", err=True)
    if verdict is not None and not verdict.valid:
        raise typer.Exit(1)
