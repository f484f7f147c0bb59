"""The FastAPI application: ``create_app()`` builds it; its lifespan owns ``Services``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from pydantic.json_schema import models_json_schema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, redact
from api.query_params import RepeatedParams
from api.reload import install_sighup
from api.reload_broadcast import start_listening
from api.routers import audit, decisions, docs, gateways, health, models, policy, report, served, ui
from api.services import Services
from api.settings import Settings
from api.routers.gateways import CheckRequest, LiteLLMGuardrailRequest, PortkeyWebhookRequest
from api.routers.served import ServedReport
from policy import DecisionRequest

log = logging.getLogger("clearance")

# The bodies endpoints read themselves (api.deps.read_body), documented in the OpenAPI components.
READ_BODIES = (DecisionRequest, ServedReport, CheckRequest, LiteLLMGuardrailRequest, PortkeyWebhookRequest)

DESCRIPTION = """\
Clearance decides, before every model call an internal app makes, which AI model routes are
cleared to serve that workload, and records every decision as a signed, hash-chained audit
entry in PostgreSQL before answering. Authenticate with `Authorization: Bearer <api key>`
(`clearance apikeys create`). Every error has the shape
`{"error": {"code", "message", "fields": [{"field", "reason"}]}}`.
"""


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before anything parses them."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        too_big = False

        async def counted() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_big = True
                    # Hand the app an empty end of body; the 413 below replaces its answer.
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_big:
                if not started:
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, guarded_send)

    async def _refuse(self, send: Send) -> None:
        response = errors.error_response(
            413, "body_too_large", f"the request body exceeds {self.limit} bytes")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(response.body)).encode())]})
        await send({"type": "http.response.body", "body": response.body})


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """Build the app. With ``services`` given, the caller owns them (tests); otherwise the app
    starts them from ``settings`` (the environment) and closes them at shutdown."""
    settings = settings or (services.settings if services else Settings())
    # Whatever server runs the app (uvicorn's workers, another ASGI server): no secret in its logs.
    key = settings.signing_key
    redact.install(redact.inline_key(key.get_secret_value() if isinstance(key, SecretStr) else key))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or Services.start(settings)
        if owned:
            # Everything built so far (modules, app, bundle) lives as long as the process. Left
            # to the cyclic GC, each full collection walked it all again: 50-90 ms pauses of the
            # event loop and the audit writer (in the chain lock), the p99 of the service.
            gc.collect()
            gc.freeze()
            # The audit writer thread takes the GIL back after each of its socket waits, several
            # per batch, while it holds the log's head lock; with the event loop busy it waited
            # up to the default 5 ms switch interval each time (docs/performance.md).
            sys.setswitchinterval(settings.switch_interval_ms / 1000)
        uninstall_sighup = install_sighup(app.state.services)  # SIGHUP reloads the policy
        # Follow the reloads of the other workers; serve once listening (or after 5 s without).
        listener, listening = start_listening(app.state.services)
        try:
            await asyncio.wait_for(listening.wait(), 5)
        except TimeoutError:
            log.warning("not yet listening for the reloads of other workers; serving all the same")
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            if uninstall_sighup is not None:
                uninstall_sighup()
            if owned:
                app.state.services.close()

    # FastAPI's own OpenTelemetry hooks look up the global providers on every request; Clearance
    # exports Prometheus metrics instead (/metrics), so they stay off.
    # /docs is Clearance's own (api/routers/docs.py): FastAPI's loads its files from a public CDN.
    app = FastAPI(title="Clearance", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    errors.install(app)
    for module in (decisions, served, models, gateways, audit, report, policy, health, ui, docs):
        app.include_router(module.router)
    app.add_middleware(RepeatedParams, api=app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    _document_read_bodies(app)
    return app


def _document_read_bodies(app: FastAPI) -> None:
    """Add the schemas of the bodies that endpoints read themselves (``api.deps.read_body``) to
    the OpenAPI components, which FastAPI fills only from declared parameters."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            _, defs = models_json_schema([(model, "validation") for model in READ_BODIES],
                                         ref_template="#/components/schemas/{model}")
            document.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
