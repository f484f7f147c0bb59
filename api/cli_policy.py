"""``clearance policy check|test|impact``: the reviewer's tools for a change to ``rego/``.

Exit codes: 0 fine; 1 the bundle fails (check errors, failing tests, coverage under the
threshold, or ``--fail-on`` tripped by the impact); 2 the command was misused.
"""

from __future__ import annotations

import re
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer

from api.cli_common import clean_errors, database, fail
from api.settings import Settings

policy_app = typer.Typer(help="Policy review: check, test (with coverage) and impact of a change.",
                         no_args_is_help=True)

DirArg = Annotated[Path | None, typer.Argument(help="Bundle directory (default: CLEARANCE_POLICY_DIR, else ./rego).",
                                               show_default=False)]
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _usage(message: str) -> NoReturn:
    fail(message, 2)


def _directory(directory: Path | None) -> Path:
    return directory or Settings().policy_dir


@policy_app.command("check")
def check(
    directory: DirArg = None,
    examples: Annotated[int, typer.Option(min=0, help="Hypothesis examples of the invariant search, after "
                                                      "the enumerated workloads.")] = 1000,
) -> None:
    """Compile every module (tests too), validate the data, check that reason codes and
    obligations are documented and used; then run the bundle's Rego tests and search the
    workload space for a violated invariant. Prints one `file:line: code: message` per error
    and, for each violated invariant, a minimal counterexample request as JSON."""
    from policy.review.check import check_bundle

    root = _directory(directory)
    errors = check_bundle(root)
    for error in errors:
        typer.echo(str(error))
    if errors:
        typer.echo(f"{root}: {len(errors)} error{'s' if len(errors) != 1 else ''}", err=True)
        raise typer.Exit(1)
    from policy import load_policy
    from policy.review.invariants import gate_errors

    policy = load_policy(root)
    bundle = policy.bundle
    gate, report = gate_errors(policy, examples=examples)
    for error in gate:
        if error.code != "invariant_violated":  # those are shown with their counterexamples below
            typer.echo(str(error))
    if report is not None:
        *violations, summary = report.format().splitlines()
        for line in violations:
            typer.echo(line)
        typer.echo(summary, err=True)
    if gate:
        typer.echo(f"{root}: {len(gate)} error{'s' if len(gate) != 1 else ''}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{root}: ok — {len(bundle.modules)} modules, {len(bundle.test_modules)} test modules, "
               f"{len(bundle.catalog.models)} models, {len(bundle.catalog.apps)} apps; revision {bundle.revision}",
               err=True)
    typer.echo(_assembly_note(policy), err=True)


def _assembly_note(policy: Any) -> str:
    """How the embedded engine will evaluate this bundle's decisions: assembled in Python from
    main.rego's tables, or whole on the VM (correct, slower per new input) and why."""
    from policy.engine import RegorusEngine

    engine = policy.engine
    if not isinstance(engine, RegorusEngine):
        return f"decisions: evaluated by {engine.name}"
    if engine.assembles:
        return "decisions: assembled in Python from main.rego's tables (policy/assembly.py)"
    return (f"note: decisions are evaluated whole by the VM, not assembled in Python "
            f"({engine.assembly_refusal}): the same answers, "
            "a new input's first evaluation about 1.5x slower (docs/policy-authoring.md)")


@policy_app.command("test")
def test(
    directory: DirArg = None,
    coverage: Annotated[bool, typer.Option("--coverage", help="Report Rego line coverage (regorus).")] = False,
    threshold: Annotated[float | None, typer.Option(min=0, max=100, metavar="PCT",
                                                    help="Fail when total coverage is below PCT (implies --coverage).")] = None,
    engine: Annotated[str, typer.Option(help="regorus (in-process) or opa (CLEARANCE_OPA_URL / --opa-url).")] = "regorus",
    opa_url: Annotated[str | None, typer.Option(help="OPA server for --engine opa.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every test, not only failures.")] = False,
    output: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Run every test_* rule and report PASS/FAIL like `opa test`; optionally coverage."""
    from policy.errors import BundleError
    from policy.review.testing import format_run, run_tests

    if engine not in ("regorus", "opa"):
        _usage(f"--engine must be regorus or opa, not {engine!r}")
    if output not in ("text", "json"):
        _usage(f"--format must be text or json, not {output!r}")
    coverage = coverage or threshold is not None
    if coverage and engine == "opa":
        _usage("coverage needs --engine regorus: OPA's REST API reports no coverage")
    try:
        run = run_tests(_directory(directory), coverage=coverage, engine=engine,  # type: ignore[arg-type]
                        opa_url=opa_url or Settings().opa_url)
    except BundleError as exc:
        typer.echo(exc.diagnostics(), err=True)
        raise typer.Exit(1) from None
    except (ValueError, RuntimeError) as exc:
        _usage(str(exc))
    below = threshold is not None and run.coverage is not None and run.coverage.percent < threshold
    if output == "json":
        document = run.to_dict() | {"threshold": threshold, "ok": run.ok and not below}
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(format_run(run, verbose=verbose, threshold=threshold))
    if not run.ok or below:
        raise typer.Exit(1)


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``30m``, ``2w``, ``90s`` ago, or an ISO 8601 date/time (UTC if naive)."""
    match = _DURATION.match(value.strip())
    now = now or datetime.now(UTC)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {value!r}: use a duration such as 7d, 12h, 30m, or an ISO date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@policy_app.command("impact")
def impact(
    base: Annotated[str, typer.Option(help="Git ref of the baseline (e.g. origin/main).")],
    head: Annotated[str | None, typer.Option(help="Git ref of the candidate (default: the work tree).")] = None,
    since: Annotated[str | None, typer.Option(help="Replay decisions recorded since (7d, 12h, ISO date).")] = None,
    last: Annotated[int | None, typer.Option(min=1, help="Replay the newest N recorded decisions.")] = None,
    inputs: Annotated[Path | None, typer.Option(help="Replay a JSONL file instead of the audit trail.")] = None,
    output: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    fail_on: Annotated[str | None, typer.Option(help="breaking: exit 1 on any allow→deny flip; "
                                                     "changes: exit 1 on any change.")] = None,
    directory: Annotated[Path | None, typer.Option("--dir", help="Policy directory in the work tree "
                                                                 "(default: CLEARANCE_POLICY_DIR, else ./rego).")] = None,
    workers: Annotated[int, typer.Option(min=0, max=64, help="Processes (0: one per core for large runs).")] = 0,
    examples: Annotated[int, typer.Option(min=0, max=50, help="Concrete examples to show.")] = 5,
    out: Annotated[Path | None, typer.Option(help="Also write the report to this file.")] = None,
) -> None:
    """Replay recorded decisions through the base and head bundles and report what changes."""
    from policy.review.impact import analyse, bundle_at
    from policy.review.markdown import render_markdown

    if output not in ("markdown", "json"):
        _usage(f"--format must be markdown or json, not {output!r}")
    if fail_on not in (None, "breaking", "changes"):
        _usage(f"--fail-on must be breaking or changes, not {fail_on!r}")
    if inputs is not None and (since or last):
        _usage("--inputs replays a file; --since/--last select from the audit trail: choose one source")
    if inputs is not None and not inputs.is_file():
        _usage(f"--inputs {inputs}: no such file")
    try:
        since_at = parse_since(since) if since else None
    except ValueError as exc:
        _usage(str(exc))
    if inputs is None and since_at is None and last is None:
        since_at, since = parse_since("7d"), "7d"
    policy_dir = _directory(directory)
    with clean_errors(), ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="clearance-impact-")))
        base_dir, base_commit = bundle_at(policy_dir, base, scratch / "base")
        head_dir, head_commit = (bundle_at(policy_dir, head, scratch / "head") if head else (policy_dir, None))
        replays, described = _source(stack, inputs=inputs, since=since_at, since_text=since, last=last)
        report = analyse(base_dir, head_dir, replays, base_ref=base, head_ref=head, base_commit=base_commit,
                         head_commit=head_commit, inputs=described, shown_dir=str(policy_dir), workers=workers,
                         examples=examples)
    document = report.to_dict()
    text = (render_markdown(document) if output == "markdown"
            else orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.write(text)
    if out is not None:
        out.write_text(text)
    if (fail_on == "breaking" and report.breaking) or (fail_on == "changes" and report.tally.changed):
        typer.echo(f"clearance: impact gate --fail-on {fail_on}: {report.breaking} allow→deny flips, "
                   f"{report.tally.changed} changed decisions", err=True)
        raise typer.Exit(1)


def _source(stack: ExitStack, *, inputs: Path | None, since: datetime | None, since_text: str | None,
            last: int | None) -> tuple[Any, str]:
    """The replays and a description of where they come from."""
    from policy.review.replay import read_jsonl, replays_from_records

    if inputs is not None:
        return read_jsonl(inputs), f"file {inputs}"
    from audit import AuditStore
    from audit.replay_source import iter_decision_inputs

    url = stack.enter_context(database(Settings()))
    store = AuditStore.from_url(url, pooled=False)
    stack.callback(store.dispose)
    parts = ([f"since {since_text}"] if since_text else []) + ([f"newest {last:,}"] if last else [])
    return (replays_from_records(iter_decision_inputs(store, since=since, last=last)),
            f"the audit trail ({', '.join(parts)})")
