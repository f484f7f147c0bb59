"""One JSON error shape for every failure, and the mapping of internal errors to HTTP.

``{"error": {"code": "…", "message": "…", "fields": [{"field": "workload.task", "reason": "…"}]}}``
Internal errors (audit store down, engine failure) are mapped here, at the boundary; nothing
below ``api`` knows about HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.apikeys import KeyStoreUnavailable
from audit.errors import AuditEntryInvalid, AuditUnavailable
from policy.errors import EvaluationError, UnknownApp
from policy.profile import ProfileViolation
from policy.strict_json import DuplicateKey

log = logging.getLogger("clearance.api")


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldError] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raised by routers and dependencies; rendered as the JSON error shape."""

    def __init__(self, status: int, code: str, message: str, *, fields: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []
        self.headers = headers


def error_response(status: int, code: str, message: str, fields: list[FieldError] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, fields=fields or []))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "(body)"


def _reason(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown field"
    return str(err.get("msg", "invalid"))


def validation_fields(errors: list[Any]) -> list[FieldError]:
    return [FieldError(field=_field_of(tuple(e.get("loc", ()))), reason=_reason(e)) for e in errors]


class BodyTooLarge(Exception):
    """A request body over the limit (``Settings.max_body_bytes``): 413 before anything parses it."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes")
        self.limit = limit


# The one mapping of exceptions to HTTP answers: ``install`` registers it as FastAPI's exception
# handlers, and the fast path of ``POST /v1/decisions`` (``api/fast_path.py``) renders with
# ``response_for``, so both answer every error with the same bytes.
Render = Callable[[Any], JSONResponse]


def _api(exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)


def _invalid(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON",
                              validation_fields(errors))
    return error_response(422, "invalid_request", "the request does not match the schema",
                          validation_fields(errors))


def _http(exc: StarletteHTTPException) -> JSONResponse:
    # FastAPI raises a bare 400 only when it cannot decode the body (bad encoding, too deep).
    code = {400: "malformed_json", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
        exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


def _too_large(exc: BodyTooLarge) -> JSONResponse:
    return error_response(413, "body_too_large", str(exc))


def _unknown_app(exc: UnknownApp) -> JSONResponse:
    return error_response(422, "unknown_app", str(exc), [FieldError(field="app_id", reason="not in apps.yaml")])


def _outside_profile(exc: ProfileViolation) -> JSONResponse:
    return error_response(422, "outside_profile", f"the request is outside the profile of app {exc.app_id!r} "
                          "in apps.yaml: a request may make a decision stricter, never looser",
                          [FieldError(field=p.field, reason=p.reason) for p in exc.problems])


def _duplicate_key(exc: DuplicateKey) -> JSONResponse:
    return error_response(400, "duplicate_key", f"the request body is ambiguous: {exc}",
                          [FieldError(field=exc.field, reason="duplicate key")])


def _retry_later(code: str, message: str) -> JSONResponse:
    return error_response(503, code, message, headers={"Retry-After": "1"})


def _audit_down(exc: AuditUnavailable) -> JSONResponse:
    log.error("audit store unavailable: %s", exc)
    return _retry_later("audit_unavailable",
                        "the decision could not be recorded in the audit trail, so none is issued; retry later")


def _unrecordable(exc: AuditEntryInvalid) -> JSONResponse:
    # Input the audit trail cannot store (a NUL character): refused, and no decision issued.
    field = (exc.field or "(body)").removeprefix("input.")
    return error_response(422, "invalid_request", "the request cannot be recorded in the audit trail, "
                          "so no decision is issued", [FieldError(field=field, reason=str(exc))])


def _keys_down(exc: KeyStoreUnavailable) -> JSONResponse:
    log.error("%s", exc)
    return _retry_later("database_unavailable",
                        "the database is unreachable, so the API key cannot be checked; retry later")


def _evaluation(exc: EvaluationError) -> JSONResponse:
    log.error("policy evaluation failed: %s", exc)
    return _retry_later("policy_evaluation_failed", f"no route is cleared: {exc}")


def _unexpected(_: Exception) -> JSONResponse:
    log.exception("unhandled error")  # called within the ``except`` that caught it: the traceback is logged
    return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


RENDERERS: dict[type[Exception], Render] = {
    ApiError: _api,
    RequestValidationError: _invalid,
    StarletteHTTPException: _http,
    BodyTooLarge: _too_large,
    UnknownApp: _unknown_app,
    ProfileViolation: _outside_profile,
    DuplicateKey: _duplicate_key,
    AuditUnavailable: _audit_down,
    AuditEntryInvalid: _unrecordable,
    KeyStoreUnavailable: _keys_down,
    EvaluationError: _evaluation,
    Exception: _unexpected,  # Starlette's ServerErrorMiddleware calls it (and re-raises to the server)
}


def response_for(exc: Exception) -> JSONResponse:
    """The answer to ``exc``: the renderer of its nearest class in ``RENDERERS``, as Starlette
    looks up exception handlers (along the exception's MRO). Call it inside the ``except``."""
    for cls in type(exc).__mro__:
        render = RENDERERS.get(cls)
        if render is not None:
            return render(exc)
    return _unexpected(exc)  # not reached: every exception's MRO holds Exception


def install(app: FastAPI) -> None:
    """Register ``RENDERERS`` as the app's exception handlers (async: Starlette runs a plain
    function handler on its thread pool)."""
    for cls, render in RENDERERS.items():
        app.add_exception_handler(cls, _handler(render))


def _handler(render: Render) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return render(exc)

    return handle
