"""``clearance audit query|stats|verify|export|report``: the compliance officer's command line.

The filter options are those of the HTTP API (validated by the same pydantic model,
``api.filters.AuditFilters``). ``verify --pack DIR`` and ``verify`` of a database are
the only two commands that judge the trail; both exit 1 when it does not verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli_common import audit_store, clean_errors, fail, pinned_for_cli
from api.settings import Settings

audit_app = typer.Typer(help="Search, count, export and verify the signed audit trail.",
                        no_args_is_help=True)

# The same filters as GET /v1/audit/decisions, one option each.
From = Annotated[str | None, typer.Option("--from", help="Recorded at or after (RFC 3339).")]
To = Annotated[str | None, typer.Option("--to", help="Recorded before (RFC 3339, exclusive).")]
AppId = Annotated[str | None, typer.Option("--app-id", help="The app that asked.")]
Model = Annotated[str | None, typer.Option("--model", help="A model among cleared or denied routes.")]
ModelStatus = Annotated[str | None, typer.Option("--model-status", help="With --model: cleared or denied.")]
Outcome = Annotated[str | None, typer.Option("--outcome", help="allow or deny.")]
ReasonCode = Annotated[str | None, typer.Option("--reason-code", help="A denied route carries this code.")]
Tier = Annotated[str | None, typer.Option("--regulatory-tier", help="minimal, standard, regulated, critical.")]
SectorOpt = Annotated[str | None, typer.Option("--sector", help="The workload's sector.")]
ProvenanceOpt = Annotated[str | None, typer.Option("--provenance", help="Provenance of a cleared model.")]
Revision = Annotated[str | None, typer.Option("--policy-revision", help="sha256:… of the policy bundle.")]
DecisionId = Annotated[str | None, typer.Option("--decision-id", help="One decision's UUID.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
# The call an entry was made for (context) and served-route reports: `audit query` only.
Kind = Annotated[str | None, typer.Option("--kind", help="decision, policy_reload, served or key.")]
RequestId = Annotated[str | None, typer.Option("--request-id", help="context.request_id.")]
TraceId = Annotated[str | None, typer.Option("--trace-id", help="context.trace_id.")]
GatewayOpt = Annotated[str | None, typer.Option("--gateway", help="context.gateway.name.")]
RequestedModel = Annotated[str | None, typer.Option("--requested-model", help="context.gateway.requested_model.")]
KeyAlias = Annotated[str | None, typer.Option("--key-alias", help="context.gateway.key_alias.")]
Team = Annotated[str | None, typer.Option("--team", help="context.gateway.team.")]
CallId = Annotated[str | None, typer.Option("--call-id", help="context.gateway.call_id.")]
ServedFor = Annotated[str | None, typer.Option("--served-for", help="Served-route reports on this decision id.")]
Served = Annotated[str | None, typer.Option("--served", help="Served-route reports: cleared or uncleared (flagged).")]


_OPTION_OF = {"from": "--from", "from_": "--from", "to": "--to", "app_id": "--app-id",
              "model": "--model", "model_status": "--model-status", "outcome": "--outcome",
              "reason_code": "--reason-code", "regulatory_tier": "--regulatory-tier",
              "sector": "--sector", "provenance": "--provenance",
              "policy_revision": "--policy-revision", "decision_id": "--decision-id",
              "group_by": "--group-by", "bucket": "--bucket", "limit": "--limit",
              "order": "--order", "format": "--format", "cursor": "--cursor", "kind": "--kind",
              "request_id": "--request-id", "trace_id": "--trace-id", "gateway": "--gateway",
              "requested_model": "--requested-model", "key_alias": "--key-alias", "team": "--team",
              "call_id": "--call-id", "served_for": "--served-for", "served": "--served"}


def _validated(model: Any, values: dict[str, Any]) -> Any:
    """Validate options with the API's model; a bad value exits 2 naming the option."""
    from pydantic import ValidationError

    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{_OPTION_OF.get(str(e['loc'][0]) if e['loc'] else '', str(e['loc']))}: {e['msg']}"
            for e in exc.errors())
        fail(f"invalid option: {problems}", 2)


_store = audit_store


def _filter_values(**options: Any) -> dict[str, Any]:
    values = dict(options)
    values["from"] = values.pop("from_")
    return values


@audit_app.command("query")
def query(
    from_: From = None, to: To = None, app_id: AppId = None, model: Model = None,
    model_status: ModelStatus = None, outcome: Outcome = None, reason_code: ReasonCode = None,
    regulatory_tier: Tier = None, sector: SectorOpt = None, provenance: ProvenanceOpt = None,
    policy_revision: Revision = None, decision_id: DecisionId = None, kind: Kind = None,
    request_id: RequestId = None, trace_id: TraceId = None, gateway: GatewayOpt = None,
    requested_model: RequestedModel = None, key_alias: KeyAlias = None, team: Team = None,
    call_id: CallId = None, served_for: ServedFor = None, served: Served = None,
    limit: Annotated[int, typer.Option(help="Entries per page (1-1000).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    order: Annotated[str, typer.Option(help="desc (newest first) or asc.")] = "desc",
    all_pages: Annotated[bool, typer.Option("--all", help="Follow next_cursor to the end.")] = False,
    as_json: AsJson = False,
) -> None:
    """Find recorded decisions (newest first), one page at a time or --all."""
    from api.filters import DecisionsQuery
    from audit.queries import CursorError, query_entries

    params = _validated(DecisionsQuery, {**_filter_values(
        from_=from_, to=to, app_id=app_id, model=model, model_status=model_status,
        outcome=outcome, reason_code=reason_code, regulatory_tier=regulatory_tier,
        sector=sector, provenance=provenance, policy_revision=policy_revision,
        decision_id=decision_id), "kind": kind, "request_id": request_id, "trace_id": trace_id,
        "gateway": gateway, "requested_model": requested_model, "key_alias": key_alias, "team": team,
        "call_id": call_id, "served_for": served_for, "served": served,
        "limit": limit, "cursor": cursor, "order": order})
    with _store() as store:
        next_cursor = params.cursor
        while True:
            try:
                page = query_entries(store, params.entry_filter(), limit=params.limit,
                                     cursor=next_cursor, order=params.order)
            except CursorError as exc:
                fail(f"invalid option: --cursor: {exc}", 2)
            if as_json and not all_pages:
                typer.echo(json.dumps(page.to_dict(), indent=2))
            elif as_json:
                for item in page.items:
                    typer.echo(json.dumps(item))
            else:
                for item in page.items:
                    typer.echo(_line(item))
            next_cursor = page.next_cursor
            if not all_pages or next_cursor is None:
                break
    if not as_json and next_cursor is not None and not all_pages:
        typer.echo(f"next page: --cursor {next_cursor}", err=True)


def _line(item: dict[str, Any]) -> str:
    cleared = ",".join(item["models_allowed"]) or "-"
    codes = ",".join(item["reason_codes"]) or "-"
    if item.get("kind") not in (None, "decision"):
        return f"{item['seq']:>8}  {item['recorded_at']}  {item['kind']:<36}  {item['app_id'] or '-'}"
    return (f"{item['seq']:>8}  {item['recorded_at']}  {item['decision_id']}  "
            f"{item['app_id'] or '-':<20} {item['outcome'] or '-':<5} "
            f"{item['regulatory_tier'] or '-':<9} {item['sector'] or '-':<18} "
            f"cleared={cleared}  reasons={codes}")


@audit_app.command("stats")
def stats_command(
    from_: From = None, to: To = None, app_id: AppId = None, model: Model = None,
    model_status: ModelStatus = None, outcome: Outcome = None, reason_code: ReasonCode = None,
    regulatory_tier: Tier = None, sector: SectorOpt = None, provenance: ProvenanceOpt = None,
    policy_revision: Revision = None, decision_id: DecisionId = None,
    group_by: Annotated[str | None, typer.Option(
        "--group-by", help="Comma-separated: outcome, app, model, provenance, regulatory_tier, "
        "reason_code, sector, kind, policy_revision, dangerous_capability.")] = None,
    bucket: Annotated[str | None, typer.Option(help="hour, day or week (UTC).")] = None,
    as_json: AsJson = False,
) -> None:
    """Count recorded decisions, grouped and per time bucket."""
    from api.filters import StatsQuery
    from audit.queries import stats

    params = _validated(StatsQuery, {**_filter_values(
        from_=from_, to=to, app_id=app_id, model=model, model_status=model_status,
        outcome=outcome, reason_code=reason_code, regulatory_tier=regulatory_tier,
        sector=sector, provenance=provenance, policy_revision=policy_revision,
        decision_id=decision_id), "group_by": group_by, "bucket": bucket})
    with _store() as store:
        result = stats(store, params.entry_filter(), group_by=list(params.group_by),
                       bucket=params.bucket)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    keys = (["bucket"] if result.bucket else []) + result.group_by
    for group in result.groups:
        label = "  ".join(f"{k}={group.get(k) if group.get(k) is not None else '-'}" for k in keys)
        typer.echo(f"{group['count']:>10}  {label}".rstrip())
    typer.echo(f"{result.total:>10}  total", err=not keys)
    if result.truncated:
        typer.echo("(more groups than shown: narrow the filters or use a coarser bucket)", err=True)


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr; the callback has verification's (done, total) shape."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@audit_app.command("verify")
def verify(
    from_seq: Annotated[int, typer.Option("--from-seq", min=1, help="First seq to verify.")] = 1,
    to_seq: Annotated[int | None, typer.Option("--to-seq", min=1, help="Last seq (default: the end).")] = None,
    checkpoint: Annotated[list[Path] | None, typer.Option(
        "--checkpoint", readable=False,  # read by verify_trail: one line naming the file
        help="A checkpoint file kept outside the database (repeatable).")] = None,
    pubkey: Annotated[Path | None, typer.Option(
        "--pubkey", help="Trusted public keys: an exported keyring (JSON) or PEM public key(s) "
                         "(default: the pinned keys, CLEARANCE_TRUSTED_KEYS).")] = None,
    pack: Annotated[Path | None, typer.Option(
        "--pack", help="Verify this evidence pack (directory) or decision proof (file) offline.")] = None,
    trusted_keys: Annotated[Path | None, typer.Option(
        "--trusted-keys", help="Pinned log verifier keys (name+hash+base64), one a line.")] = None,
    workers: Annotated[int, typer.Option(
        min=0, max=64, help="Processes for long database ranges (default: one per CPU).")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    as_json: AsJson = False,
    witness: Annotated[list[str] | None, typer.Option(
        "--witness", help="A pinned witness verifier key (cosignature/v1); repeatable.")] = None,
    min_cosignatures: Annotated[int | None, typer.Option(
        "--min-cosignatures", min=1, help="Valid cosignatures of --witness keys the verified checkpoint "
                                          "must carry (default: all of them).")] = None,
) -> None:
    """Recompute every hash, signature, link and checkpoint; exit 1 if anything is wrong."""
    import os

    from audit.pack import load_trusted_keys, load_verifier_keys, verify_decision_proof, verify_pack
    from audit.trust import trusted_verifiers
    from audit.witnessing import witness_verifier

    with clean_errors():
        witnesses = [witness_verifier(vkey) for vkey in witness or ()]
        if min_cosignatures is not None and not witnesses:
            fail("--min-cosignatures needs the witnesses' keys: --witness VKEY (repeatable)", 2)
        if min_cosignatures is not None and min_cosignatures > len(witnesses):
            fail(f"--min-cosignatures {min_cosignatures} is more than the {len(witnesses)} --witness key(s) given", 2)
        keyring = load_trusted_keys(pubkey) if pubkey is not None else None
        pinned = load_verifier_keys(trusted_keys) if trusted_keys is not None else None
        if pack is not None:
            if to_seq is not None or from_seq != 1 or checkpoint:
                fail("--pack verifies the whole pack; --from-seq/--to-seq/--checkpoint do not apply", 2)
            if pinned is None and keyring is not None:
                pinned = list(trusted_verifiers(keyring.values(), _pack_origin(pack)))
            if pinned is None:
                pinned = pinned_for_cli()
            if pack.is_file():
                answer = verify_decision_proof(json.loads(pack.read_text(encoding="utf-8")),
                                               trusted=pinned).to_dict()
            else:
                with _progress("verifying pack", progress and not as_json) as update:
                    answer = verify_pack(pack, trusted=pinned, progress=update).to_dict()
            if witnesses and answer["valid"]:
                answer = _witnessed(answer, _pack_note(pack), witnesses, min_cosignatures)
        else:
            if to_seq is not None and to_seq < from_seq:
                fail("--to-seq must not be below --from-seq", 2)
            from audit.logverify import verify_trail

            with _store() as store, _progress("verifying", progress and not as_json) as update:
                # --trusted-keys, --pubkey, or the pinned keys: never the database's keyring
                if pinned is None:
                    pinned = (list(trusted_verifiers(keyring.values(), Settings().log_origin))
                              if keyring is not None else pinned_for_cli())
                answer = verify_trail(store, trusted=pinned, from_seq=from_seq, to_seq=to_seq, keyring=keyring,
                                      checkpoint_files=checkpoint or (), progress=update,
                                      workers=workers or os.cpu_count() or 1).to_dict()
                if witnesses and answer["valid"]:
                    answer = _witnessed(answer, _stored_note(store, answer, pinned), witnesses, min_cosignatures)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
    elif answer["valid"]:
        typer.echo(f"valid: {answer['checked']} entries of the {answer.get('log', 'v1')} log "
                   f"(seq {answer['from_seq']}..{answer['to_seq']}), "
                   f"{answer['checkpoints_checked']} checkpoint(s)"
                   + (f"; {answer['witnesses']['message']}" if "witnesses" in answer else ""))
    else:
        typer.echo(f"INVALID at {answer.get('log', 'v1')} seq {answer['first_bad_seq']} ({answer['check']}): "
                   f"{answer['reason']}\n"
                   f"{answer['checked']} entries verified before it")
    if not answer["valid"]:
        raise typer.Exit(1)


@audit_app.command("export")
def export(
    from_: From = None, to: To = None, app_id: AppId = None, model: Model = None,
    model_status: ModelStatus = None, outcome: Outcome = None, reason_code: ReasonCode = None,
    regulatory_tier: Tier = None, sector: SectorOpt = None, provenance: ProvenanceOpt = None,
    policy_revision: Revision = None, decision_id: DecisionId = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write an evidence pack to this new directory (only --from/--to apply).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv (to stdout).")] = "jsonl",
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr (packs).")] = True,
) -> None:
    """Export matching entries to stdout (JSONL/CSV), or an evidence pack with --out DIR."""
    from api.filters import ExportQuery
    from audit.export import stream_csv, stream_jsonl
    from audit.pack import write_pack

    values = _filter_values(
        from_=from_, to=to, app_id=app_id, model=model, model_status=model_status,
        outcome=outcome, reason_code=reason_code, regulatory_tier=regulatory_tier,
        sector=sector, provenance=provenance, policy_revision=policy_revision,
        decision_id=decision_id)
    params = _validated(ExportQuery, {**values, "format": fmt})
    if out is not None:
        narrowing = sorted(_OPTION_OF[k] for k, v in values.items() if v is not None and k not in ("from", "to"))
        if narrowing:
            fail(f"an evidence pack holds every entry of its time range so that its completeness verifies; "
                  f"{', '.join(narrowing)} cannot narrow it (use `clearance audit export` without "
                  "--out, or `audit query`, for a filtered list)", 2)
        with _store() as store, _progress("exporting", progress) as update:
            manifest = write_pack(store, out, start=params.from_, end=params.to, progress=update)
        typer.echo(f"evidence pack {out}: {manifest['entries']} entries, seq "
                   f"{manifest['first_seq']}..{manifest['last_seq']}, proofs against the checkpoint of "
                   f"size {manifest['checkpoint_size']}", err=True)
        return
    with _store() as store:
        stream = stream_csv if params.format == "csv" else stream_jsonl
        output = typer.get_binary_stream("stdout")
        for chunk in stream(store, params.entry_filter()):
            output.write(chunk)
        output.flush()


def _pack_note(pack: Path) -> str:
    """The signed checkpoint (with any cosignatures) a pack or decision proof carries."""
    from audit.pack import CHECKPOINT_FILE

    if pack.is_file():
        return str(json.loads(pack.read_text(encoding="utf-8"))["tlog_proof"].partition("\n\n")[2])
    return (pack / CHECKPOINT_FILE).read_text(encoding="utf-8")


def _stored_note(store: Any, answer: dict[str, Any], pinned: Any) -> str | None:
    """The stored checkpoint at the end of the verified range, with its stored cosignatures."""
    from audit.witnessing import stored_cosigned_note

    with store.log_snapshot() as conn:
        return stored_cosigned_note(conn, int(answer["to_seq"] or 0), pinned, origin=Settings().log_origin)


def _witnessed(answer: dict[str, Any], note: str | None, witnesses: Any, minimum: int | None) -> dict[str, Any]:
    from audit.witnessing import judge_witnessed

    return judge_witnessed(answer, note, witnesses, minimum)


def _pack_origin(pack: Path) -> str:
    """The origin a pack's checkpoint names (its first line): the key name of --pubkey keys."""
    return _pack_note(pack).split("\n", 1)[0]


@audit_app.command("prove")
def prove(
    decision_id: Annotated[str, typer.Argument(help="The decision's id (a UUID).")],
    out: Annotated[Path, typer.Option("--out", help="Write the proof to this new file.")],
) -> None:
    """Write one decision's proof (its leaf, blobs and a C2SP tlog-proof) revealing no other."""
    from audit.pack import prove_decision

    with clean_errors():
        if out.exists():
            fail(f"{out} exists; choose a new file", 2)
        with _store() as store:
            document = prove_decision(store, decision_id)
        out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    typer.echo(f"decision proof {out}: seq {document['seq']}; verify with "
               f"clearance audit verify --pack {out} --trusted-keys KEYS", err=True)


@audit_app.command("verifier-keys")
def verifier_keys() -> None:
    """Print the verifier keys (C2SP ``name+hash+base64``) of the keys the database lists, one a
    line. The database's operators can add to that list: pin only lines you can vouch for
    (``clearance keys check`` names the keys that are not pinned)."""
    from audit.trust import trusted_verifiers

    with clean_errors(), _store() as store:
        for verifier in trusted_verifiers(store.list_keys(), Settings().log_origin):
            typer.echo(verifier.verifier_key)  # type: ignore[attr-defined]


from api.cli_report import report as _report  # noqa: E402 (registered last: it uses this module)

audit_app.command("report")(_report)
