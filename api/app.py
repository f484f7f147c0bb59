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
from starlette.types import ASGIApp

from api import errors, redact
from api.body_limit import BodyLimit
from api.fast_path import FastDecisions
from api.heap import HeapFreezer
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


class _Clearance(FastAPI):
    """FastAPI with the fast path of ``POST /v1/decisions`` (``api/fast_path.py``) outermost,
    outside even Starlette's error middleware: built with the rest of the stack, at first call."""

    fast_limit: int | None = None  # the body limit when the fast path is on

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return stack if self.fast_limit is None else FastDecisions(stack, limit=self.fast_limit)


def create_app(settings: Settings | None = None, *, services: Services | None = None,
               fast_decisions: bool | None = None) -> FastAPI:
    """Build the app. With ``services`` given, the caller owns them (tests); otherwise the app
    starts them from ``settings`` (the environment) and closes them at shutdown.
    ``fast_decisions`` overrides ``Settings.fast_decisions`` (tests compare both paths)."""
    settings = settings or (services.settings if services else Settings())
    if fast_decisions is None:
        fast_decisions = settings.fast_decisions
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
        # What is cached from now on (an evaluation per new input) is frozen the same way, and
        # thawed and collected once a period (api/heap.py).
        freezer = (HeapFreezer(freeze_seconds=settings.gc_freeze_seconds, thaw_seconds=settings.gc_thaw_seconds)
                   if owned and settings.gc_freeze_seconds > 0 else None)
        if freezer is not None:
            freezer.start()
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
            if freezer is not None:
                freezer.stop()
            if owned:
                app.state.services.close()

    # FastAPI's own OpenTelemetry hooks look up the global providers on every request; Clearance
    # exports Prometheus metrics instead (/metrics), so they stay off.
    # /docs is Clearance's own (api/routers/docs.py): FastAPI's loads its files from a public CDN.
    app = _Clearance(title="Clearance", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                     telemetry={"tracing": False, "metrics": False, "logs": False},
                     docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    errors.install(app)
    for module in (decisions, served, models, gateways, audit, report, policy, health, ui, docs):
        app.include_router(module.router)
    app.add_middleware(RepeatedParams, api=app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if fast_decisions:
        app.fast_limit = settings.max_body_bytes
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
