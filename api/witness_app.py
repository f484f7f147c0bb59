"""The witness's HTTP interface (C2SP tlog-witness), around :class:`audit.tlog.witness.Witness`.

``POST /add-checkpoint``
    Body: ``old <size>``, zero to 63 base64 consistency-proof lines, an empty line, the signed
    checkpoint. ``200`` with the cosignature line(s) (``text/plain; charset=utf-8``);
    ``400`` malformed / old size above the checkpoint's; ``403`` not signed by the log's key;
    ``404`` unknown origin; ``409`` old size is not the last cosigned size — body is that size
    and a newline, ``Content-Type: text/x.tlog.size``; ``422`` inconsistent tree or bad proof;
    ``413`` body over 256 KiB; ``503`` the state could not be written (nothing was cosigned).
``GET /{origin hash}/checkpoint``
    The last checkpoint cosigned for the log whose origin has this lowercase hex SHA-256,
    with the log's signature and the witness's cosignature; ``404`` if none.

Error bodies are one line of plain text saying why.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from audit.tlog.witness import (
    BadRequest,
    OldSizeConflict,
    ProofRejected,
    UnknownLog,
    UntrustedCheckpoint,
    Witness,
    WitnessRefusal,
)

MAX_BODY_BYTES = 256 * 1024
SIZE_MEDIA_TYPE = "text/x.tlog.size"

log = logging.getLogger("clearance.witness")

_STATUS: dict[type[WitnessRefusal], int] = {
    BadRequest: 400,
    UntrustedCheckpoint: 403,
    UnknownLog: 404,
    ProofRejected: 422,
}


def create_witness_app(witness: Witness) -> FastAPI:
    """An ASGI app serving ``witness``. Run it in one process: the state directory is locked."""
    app = FastAPI(title="Clearance witness (C2SP tlog-witness)", openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return _text(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
        try:
            lines = await run_in_threadpool(witness.handle, bytes(body))
        except OldSizeConflict as exc:
            # Exactly this media type (no charset parameter): clients match it literally.
            return Response(f"{exc.size}\n", status_code=409, headers={"content-type": SIZE_MEDIA_TYPE})
        except WitnessRefusal as exc:
            return _text(_STATUS.get(type(exc), 400), str(exc))
        except OSError as exc:
            log.error("witness state could not be written: %s", exc)
            return _text(503, "the witness could not persist its state; nothing was cosigned")
        return PlainTextResponse(lines)

    @app.get("/{origin_hash}/checkpoint")
    async def checkpoint(origin_hash: str) -> Response:
        note = witness.latest(origin_hash)
        if note is None:
            return _text(404, "this witness has not cosigned a checkpoint of that log")
        return PlainTextResponse(note, headers={"cache-control": "no-store"})

    return app


def _text(status: int, message: str) -> Response:
    return PlainTextResponse(message.replace("\n", " ") + "\n", status_code=status)
