"""One JSON error shape for every failure, and the mapping of internal errors to HTTP.

``{"error": {"code": "…", "message": "…", "fields": [{"field": "workload.task", "reason": "…"}]}}``
Internal errors (audit store down, engine failure) are mapped here, at the boundary; nothing
below ``api`` knows about HTTP.
"""

from __future__ import annotations

import logging
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


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON shape above."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON",
                                  validation_fields(errors))
        return error_response(422, "invalid_request", "the request does not match the schema",
                              validation_fields(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI raises a bare 400 only when it cannot decode the body (bad encoding, too deep).
        code = {400: "malformed_json", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(UnknownApp)
    async def _unknown_app(_: Request, exc: UnknownApp) -> JSONResponse:
        return error_response(422, "unknown_app", str(exc), [FieldError(field="app_id", reason="not in apps.yaml")])

    @app.exception_handler(ProfileViolation)
    async def _outside_profile(_: Request, exc: ProfileViolation) -> JSONResponse:
        return error_response(422, "outside_profile", f"the request is outside the profile of app {exc.app_id!r} "
                              "in apps.yaml: a request may make a decision stricter, never looser",
                              [FieldError(field=p.field, reason=p.reason) for p in exc.problems])

    @app.exception_handler(DuplicateKey)
    async def _duplicate_key(_: Request, exc: DuplicateKey) -> JSONResponse:
        return error_response(400, "duplicate_key", f"the request body is ambiguous: {exc}",
                              [FieldError(field=exc.field, reason="duplicate key")])

    @app.exception_handler(AuditUnavailable)
    async def _audit_down(_: Request, exc: AuditUnavailable) -> JSONResponse:
        log.error("audit store unavailable: %s", exc)
        return error_response(503, "audit_unavailable",
                              "the decision could not be recorded in the audit trail, so none is issued; retry later",
                              headers={"Retry-After": "1"})

    @app.exception_handler(AuditEntryInvalid)
    async def _unrecordable(_: Request, exc: AuditEntryInvalid) -> JSONResponse:
        # Input the audit trail cannot store (a NUL character): refused, and no decision issued.
        field = (exc.field or "(body)").removeprefix("input.")
        return error_response(422, "invalid_request", "the request cannot be recorded in the audit trail, "
                              "so no decision is issued", [FieldError(field=field, reason=str(exc))])

    @app.exception_handler(KeyStoreUnavailable)
    async def _keys_down(_: Request, exc: KeyStoreUnavailable) -> JSONResponse:
        log.error("%s", exc)
        return error_response(503, "database_unavailable",
                              "the database is unreachable, so the API key cannot be checked; retry later",
                              headers={"Retry-After": "1"})

    @app.exception_handler(EvaluationError)
    async def _evaluation(_: Request, exc: EvaluationError) -> JSONResponse:
        log.error("policy evaluation failed: %s", exc)
        return error_response(503, "policy_evaluation_failed",
                              f"no route is cleared: {exc}", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
