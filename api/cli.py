"""The ``clearance`` command line (Typer).

Errors of Clearance's own kinds are printed as one clear paragraph on stderr with exit code 1
(or 2 for usage; ``api/cli_common.py``); tracebacks are for bugs only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from api import redact
from api.cli_audit import audit_app
from api.cli_common import clean_errors, database, ensure_signing_key, fail
from api.cli_policy import policy_app
from api.cli_witness import witness_app
from api.settings import Settings


def _mask_secrets() -> None:
    """Before any command: no secret in a log line or a traceback of this process (api/redact.py)."""
    redact.install(redact.inline_key(os.environ.get("CLEARANCE_SIGNING_KEY")))


app = typer.Typer(help="Clearance: which AI models may serve this workload — decided, signed and recorded.",
                  no_args_is_help=True, pretty_exceptions_enable=False, callback=_mask_secrets)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Audit signing keys (Ed25519).", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys of callers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(witness_app, name="witness")

T = TypeVar("T")


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus Clearance's own loggers (start-up, reloads, audit) at INFO."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["secrets"] = {"()": "api.redact.SecretFilter"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("secrets")
    config["loggers"]["clearance"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["audit"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        min=1, max=64, help="Worker processes [default: CLEARANCE_WORKERS, else one per core].")] = None,
) -> None:
    """Run the HTTP service (uvicorn). Without CLEARANCE_DATABASE_URL, an embedded PostgreSQL
    is started under ~/.clearance/pg; migrations are applied and a signing key created if none."""
    import uvicorn

    settings = Settings()
    workers = settings.serve_workers(workers)
    with clean_errors():
        from policy import load_policy

        load_policy(settings.policy_dir)  # refuse to start on a broken bundle, with its errors
        with database(settings, migrate=True) as url:
            ensure_signing_key(settings, url)
            # Workers inherit the resolved database, so they share the one embedded server.
            os.environ["CLEARANCE_DATABASE_URL"] = url
            shown = redact.redact(url) if settings.database_url else f"embedded PostgreSQL in {settings.home / 'pg'}"
            typer.echo(
                f"Clearance listening on http://{host}:{port}  (database: {shown}; policy: {settings.policy_dir}; "
                f"workers: {workers})\n"
                f"Create an API key:  clearance apikeys create --app internal-helpdesk --role app\n"
                f"OpenAPI:            http://{host}:{port}/docs",
                err=True,
            )
            options: dict[str, Any] = dict(host=host, port=port, workers=workers, log_level="info",
                                           access_log=False, log_config=_log_config())
            if settings.http_coalesce:
                from api.http_protocol import CoalescingHttpToolsProtocol

                options["http"] = CoalescingHttpToolsProtocol
            if workers > 1:  # SIGHUP to this process reloads every worker, recorded once
                from api.supervisor import run_workers

                run_workers("api.app:create_app", reuseport=settings.reuseport, **options)
            else:
                uvicorn.run("api.app:create_app", factory=True, **options)


@app.command()
def decide(
    file: Annotated[Path | None, typer.Argument(help="JSON request file (as for POST /v1/decisions); stdin if omitted or '-'.")] = None,
) -> None:
    """Decide one request, record it in the audit trail like any other, print the decision."""
    from pydantic import ValidationError

    from api.services import Services
    from policy import Caller, DecisionRequest, strict_json
    from policy.profile import ProfileViolation

    raw = sys.stdin.read() if file is None or str(file) == "-" else file.read_text()
    try:
        request = DecisionRequest.model_validate(strict_json.loads(raw))
    except (strict_json.MalformedJson, strict_json.DuplicateKey) as exc:
        fail(f"invalid request: {exc}", 2)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors())
        fail(f"invalid request: {problems}", 2)
    settings = Settings()
    with clean_errors(), database(settings, migrate=True) as url:
        ensure_signing_key(settings, url)
        services = Services.start(settings.model_copy(update={"database_url": url}))
        try:  # the service's own decision path (api/decider.py), without HTTP
            try:
                decision = services.decider.decide_blocking(request, caller=Caller(key_id=None, role="cli"))
            except ProfileViolation as exc:
                fail(exc.diagnostics(), 2)
        finally:
            services.close()
    typer.echo(json.dumps(decision, indent=2))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (creates the schema on a new database)."""
    from audit.migrate import head_revision

    with clean_errors(), database(Settings(), migrate=True):
        typer.echo(f"database at revision {head_revision()}")


@db_app.command("grant")
def db_grant(
    role: Annotated[str, typer.Option(help="The service's database role (created with LOGIN if missing).")],
    password_env: Annotated[str | None, typer.Option(
        "--password-env", help="Set the role's password from this environment variable.")] = None,
) -> None:
    """Least privilege: let ROLE append to the audit log and read keys, nothing else. Run it
    connected as the tables' owner, again after every `db upgrade`; the service connects as ROLE."""
    from audit.roles import apply_service_grants

    password = None
    if password_env is not None:
        password = os.environ.get(password_env) or fail(f"{password_env} is not set", 2)
    with clean_errors(), database(Settings(), migrate=True) as url:
        report = apply_service_grants(url, role, password=password)
    typer.echo(("created" if report.created else "updated") + f" role {report.role}: "
               + "; ".join(report.granted))
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)


def _key_path(path: Path | None, settings: Settings) -> Path:
    return path or settings.key_file()


def _pinned_reminder(settings: Settings, pinned: Path, line: str) -> None:
    configured = settings.trusted_keys
    if configured is not None and configured.resolve() != pinned.resolve():
        typer.echo(f"CLEARANCE_TRUSTED_KEYS is {configured}: append this line there too, or the service "
                   f"will refuse the key:\n{line}", err=True)


@keys_app.command("init")
def keys_init(path: Annotated[Path | None, typer.Argument(help="Key file (default ~/.clearance/signing.key).")] = None) -> None:
    """Create a new Ed25519 signing key file (mode 0600), register its public key, pin it in
    PATH.trusted and record its creation in the log."""
    from api.key_admin import init_signing_key

    settings = Settings()
    target = _key_path(path, settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    with clean_errors(), database(settings, migrate=True) as url:
        change = init_signing_key(url, target, origin=settings.log_origin)
    typer.echo(f"{change.key.key_id}  {target}  (pinned in {change.pinned_file}; entry seq {change.receipt.seq})")
    _pinned_reminder(settings, change.pinned_file, change.verifier_key)


@keys_app.command("rotate")
def keys_rotate(path: Annotated[Path | None, typer.Argument(help="Key file to replace.")] = None) -> None:
    """Replace the signing key; the old public key stays registered and pinned so old entries
    verify; the rotation is recorded in the log, signed by the old key."""
    from api.key_admin import rotate_signing_key

    settings = Settings()
    with clean_errors(), database(settings, migrate=True) as url:
        change = rotate_signing_key(url, _key_path(path, settings), origin=settings.log_origin)
    typer.echo(f"{change.key.key_id}  (old key kept as {change.retired}; pinned in {change.pinned_file}; "
               f"entry seq {change.receipt.seq}; restart the service to sign with the new key)")
    _pinned_reminder(settings, change.pinned_file, change.verifier_key)


@keys_app.command("register")
def keys_register() -> None:
    """Register the configured signing key (CLEARANCE_SIGNING_KEY or the key file), pin it and
    record it: needed before a service whose role may not register keys can start."""
    from api.key_admin import register_signing_key
    from api.services import load_key

    settings = Settings()
    with clean_errors(), database(settings, migrate=True) as url:
        change = register_signing_key(url, load_key(settings), settings.trusted_keys_path(),
                                      origin=settings.log_origin)
    typer.echo(f"{change.key.key_id}  (pinned in {change.pinned_file}; entry seq {change.receipt.seq})")


@keys_app.command("check")
def keys_check() -> None:
    """Compare the database's signing keys with the pinned ones; exit 1 if the database knows
    a key that is not pinned (someone with the database's role may have added it)."""
    from api.pinned import pinned_verifiers
    from audit import AuditStore
    from audit.trust import check_keyring, first_signed_seqs

    settings = Settings()
    with clean_errors():
        pinned = pinned_verifiers(settings)
        if not pinned.configured:
            fail(f"no pinned keys: set CLEARANCE_TRUSTED_KEYS or create {settings.trusted_keys_path()} "
                 "(clearance keys init|register)")
        with database(settings) as url:
            store = AuditStore.from_url(url, pooled=False)
            try:
                report = check_keyring(store.keyring(), pinned.verifiers,
                                       first_seq=lambda ids: first_signed_seqs(store.engine, ids))
            finally:
                store.dispose()
    for problem in report.problems():
        typer.echo(f"UNTRUSTED: {problem}")
    for verifier in report.pinned_only:
        typer.echo(f"note: pinned key {verifier.verifier_key} is not registered in the database", err=True)
    if not report.trusted:
        raise typer.Exit(1)
    typer.echo(f"ok: every signing key in the database is pinned in {pinned.source}")


@keys_app.command("list")
def keys_list() -> None:
    """List every registered public key (id, creation time)."""
    from audit import AuditStore

    with clean_errors(), database(Settings()) as url:
        store = AuditStore.from_url(url, pooled=False)
        for key in store.list_keys():
            typer.echo(f"{key.key_id}  {key.created_at.isoformat() if key.created_at else '-'}")
        store.dispose()


@keys_app.command("export")
def keys_export(
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export the public keys (JSON keyring) for offline verification."""
    from audit import AuditStore, export_keyring

    with clean_errors(), database(Settings()) as url:
        store = AuditStore.from_url(url, pooled=False)
        text = export_keyring(store.list_keys(), out)
        store.dispose()
    if out is None:
        typer.echo(text)


def _admin_key(url: str) -> Any:
    """The signing key that records API-key changes (created on first use, as `serve` would);
    one configured but unreadable: SigningKeyError, before any change."""
    from api.services import load_key

    settings = Settings()
    ensure_signing_key(settings, url)
    return load_key(settings)


def _with_keys_db(action: Callable[[Any, str], T]) -> T:
    from psycopg.errors import InsufficientPrivilege
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ProgrammingError
    from sqlalchemy.pool import NullPool

    from audit._db import sqlalchemy_url

    with clean_errors(), database(Settings(), migrate=True) as url:
        engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
        try:
            return action(engine, url)
        except ProgrammingError as exc:
            if not isinstance(exc.orig, InsufficientPrivilege):
                raise
            fail("this database role may not change API keys (clearance db grant keeps them to the "
                 "tables' owner): run the command with the owner's CLEARANCE_DATABASE_URL")
        finally:
            engine.dispose()


@apikeys_app.command("create")
def apikeys_create(
    role: Annotated[str, typer.Option(help="app, auditor, admin or gateway.")],
    app_id: Annotated[str | None, typer.Option("--app", help="The app an app key decides for.")] = None,
    apps: Annotated[str | None, typer.Option(
        "--apps", help="A gateway key: the apps it may decide for, comma-separated (a,b).")] = None,
    gateway: Annotated[str | None, typer.Option(
        "--gateway", help="A gateway key: bind it to this gateway of gateways.yaml (default: any, named per call).")] = None,
    label: Annotated[str | None, typer.Option(help="A note for humans (who holds it).")] = None,
) -> None:
    """Create an API key and print it alone on stdout (it is not shown again)."""
    from api.apikeys import ApiKeyError, Role, check_role, create_key
    from api.key_admin import ApiKeyRecorder

    listed = [a.strip() for a in apps.split(",") if a.strip()] if apps is not None else None
    try:
        parsed = Role(role)
        check_role(parsed, app_id, listed, gateway)
    except ValueError:
        fail(f"--role must be app, auditor, admin or gateway, not {role!r}", 2)
    except ApiKeyError as exc:
        fail(str(exc), 2)
    if app_id is not None or listed or gateway is not None:
        from policy import load_bundle

        with clean_errors():
            bundle = load_bundle(Settings().policy_dir)
        unknown = [a for a in ([app_id] if app_id else []) + (listed or []) if bundle.catalog.app(a) is None]
        if unknown:
            fail(f"app {unknown[0]!r} is not in apps.yaml", 2)
        if gateway is not None and bundle.gateways.get(gateway) is None:
            fail(f"gateway {gateway!r} is not in gateways.yaml", 2)
    key, principal = _with_keys_db(lambda db, url: create_key(
        db, role=parsed, app_id=app_id, label=label, apps=listed, gateway=gateway,
        record=ApiKeyRecorder(url, _admin_key(url)).created))
    scope = f" for {app_id}" if app_id else (f" for apps {','.join(sorted(principal.apps))}" if listed else "")
    typer.echo(f"created {principal.role.value} key {principal.key_id}{scope}"
               + (f" (gateway {gateway})" if gateway else ""), err=True)
    typer.echo(key)


@apikeys_app.command("revoke")
def apikeys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (second part of the key).")]) -> None:
    """Revoke a key: it is refused from then on (within the service's key cache time). The
    revocation is recorded in the log."""
    from api.apikeys import revoke_key
    from api.key_admin import ApiKeyRecorder

    _with_keys_db(lambda db, url: revoke_key(  # an unknown id: ApiKeyError, exit 1
        db, key_id, record=ApiKeyRecorder(url, _admin_key(url)).revoked))
    typer.echo(f"revoked {key_id}")


@apikeys_app.command("list")
def apikeys_list() -> None:
    """List keys: id, role, app, created, revoked (secrets are never shown)."""
    from api.apikeys import list_keys

    for k in _with_keys_db(lambda db, _url: list_keys(db)):
        revoked = k.revoked_at.isoformat() if k.revoked_at else "-"
        scope = k.app_id or (",".join(k.apps) + (f"@{k.gateway}" if k.gateway else "") if k.apps else "-")
        typer.echo(f"{k.key_id}  {k.role:<7}  {scope:<24}  {k.created_at.isoformat()}  revoked={revoked}  {k.label or ''}")
