"""``clearance witness init|serve``: run a C2SP tlog-witness for a Clearance log.

The witness has its own Ed25519 key (a ``PRIVATE+KEY+…`` signer key of type 0x04 in a 0600
file) and its own state directory; it never reads the log's database. ``serve`` takes each
log's verifier key with ``--log``: the key's name is the log's origin.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated, NoReturn

import typer

witness_app = typer.Typer(help="A transparency-log witness (C2SP tlog-witness): cosigns a log's checkpoints "
                               "only when they extend the last one it cosigned.", no_args_is_help=True)

KeyFile = Annotated[Path, typer.Option("--key", help="The witness's private key file (PRIVATE+KEY+…, mode 0600).")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"clearance: {message}", err=True)
    raise typer.Exit(1)


@witness_app.command("init")
def init(
    key: KeyFile,
    name: Annotated[str, typer.Option("--name", help="The witness's name, a schema-less URL "
                                                     "(witness.example.com/w1).")],
) -> None:
    """Create a witness key in FILE (refuses to overwrite one); print its verifier key."""
    from audit.tlog.cosignature import CosignatureSigner
    from audit.tlog.errors import TlogError

    try:
        signer = CosignatureSigner.generate(name)
    except TlogError as exc:
        _fail(exc.diagnostics())
    try:
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _fail(f"{key} exists; the witness key is not replaced (a new key is a new witness)")
    except OSError as exc:
        _fail(f"cannot create {key}: {exc.strerror}")
    with os.fdopen(fd, "w") as out:
        out.write(signer.signer_key + "\n")
    typer.echo(signer.verifier_key)


@witness_app.command("serve")
def serve(
    key: KeyFile,
    state: Annotated[Path, typer.Option("--state", help="State directory (last cosigned checkpoint of each log).")],
    log: Annotated[list[str], typer.Option("--log", help="Verifier key of a log to witness (repeat for more).")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8081,
) -> None:
    """Serve POST /add-checkpoint (and GET /<origin hash>/checkpoint) in one process."""
    import uvicorn

    from api.witness_app import create_witness_app
    from audit.tlog.cosignature import CosignatureSigner, load_signer
    from audit.tlog.errors import TlogError
    from audit.tlog.witness import Witness, WitnessState, logs_from_keys

    try:
        mode = key.stat().st_mode
    except OSError as exc:
        _fail(f"cannot read witness key {key}: {exc.strerror}; create one with `clearance witness init`")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _fail(f"witness key {key} has mode {stat.S_IMODE(mode):04o}: group/other may read it; run `chmod 600 {key}`")
    try:
        signer = load_signer(key.read_text(encoding="utf-8"))
        if not isinstance(signer, CosignatureSigner):
            _fail(f"{key} is a log signing key (type 0x01), not a witness key (type 0x04)")
        logs = logs_from_keys(log)
        witness = Witness(signer=signer, logs=logs, state=WitnessState(state))
    except TlogError as exc:
        _fail(exc.diagnostics())
    typer.echo(f"witness {signer.verifier_key} for {', '.join(k.origin for k in logs)} on http://{host}:{port}",
               err=True)
    try:
        uvicorn.run(create_witness_app(witness), host=host, port=port, workers=1, log_level="info", access_log=False)
    finally:
        witness.close()
