"""What the sync and async clients share: the request they send and how an answer is read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from clearance_client.errors import (
    ClearanceError,
    FieldError,
    Forbidden,
    InvalidRequest,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)
from clearance_client.models import Decision, loads_strict

__version__ = "0.1.0"
USER_AGENT = f"clearance-client/{__version__}"
DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
DECISIONS_PATH = "/v1/decisions"


def decision_body(app_id: str, workload: Mapping[str, Any] | None, context: Mapping[str, Any] | None,
                  workload_profile: str | None) -> dict[str, Any]:
    if not isinstance(app_id, str) or not app_id:
        raise ValueError("app_id must be a non-empty string (the app's id in Clearance's apps.yaml)")
    if workload is None and workload_profile is None:
        raise ValueError("give the workload, or the name of one of the app's workload profiles")
    if workload is not None and not isinstance(workload, Mapping):
        raise TypeError(f"workload must be a mapping of workload fields, not {type(workload).__name__}")
    if workload_profile is not None and (not isinstance(workload_profile, str) or not workload_profile):
        raise TypeError("workload_profile must be the name of one of the app's workload profiles")
    if context is not None and not isinstance(context, Mapping):
        raise TypeError(f"context must be a mapping (request_id, trace_id, …), not {type(context).__name__}")
    body: dict[str, Any] = {"app_id": app_id}
    if workload is not None:
        body["workload"] = dict(workload)
    if workload_profile is not None:
        body["workload_profile"] = workload_profile
    if context is not None:
        body["context"] = dict(context)
    return body


def headers(api_key: str | None) -> dict[str, str]:
    out = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out


def transport_error(exc: httpx.HTTPError) -> Unavailable:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return Unavailable(f"the request to Clearance {kind}: {type(exc).__name__}: {exc}")


def read_decision(response: httpx.Response) -> Decision:
    """The decision in a 200 answer; every other answer raises the matching ClearanceError."""
    if response.status_code != 200:
        raise error_for(response)
    try:
        return Decision.from_json(loads_strict(response.content))
    except UnexpectedResponse as exc:
        raise UnexpectedResponse(str(exc), status=200) from None


def error_for(response: httpx.Response) -> ClearanceError:
    status = response.status_code
    code, message, fields = _error_body(response)
    if status in (400, 413, 422):
        return InvalidRequest(message, status=status, code=code, fields=fields)
    if status == 401:
        return Unauthorized(message, code=code)
    if status == 403:
        return Forbidden(message, code=code)
    if status == 429 or status >= 500:
        return Unavailable(message, status=status, retry_after=_retry_after(response))
    return UnexpectedResponse(f"HTTP {status}: {message}", status=status)


def _error_body(response: httpx.Response) -> tuple[str | None, str, tuple[FieldError, ...]]:
    """Clearance's error shape: {"error": {"code", "message", "fields": [{"field", "reason"}]}}."""
    try:
        error = loads_strict(response.content).get("error")
    except (ClearanceError, AttributeError):
        error = None
    if not isinstance(error, Mapping):
        text = response.content[:200].decode("utf-8", "replace").strip()
        return None, text or response.reason_phrase or f"HTTP {response.status_code}", ()
    fields = tuple(
        FieldError(str(f.get("field", "")), str(f.get("reason", "")))
        for f in error.get("fields") or () if isinstance(f, Mapping)
    )
    code = error.get("code")
    return (code if isinstance(code, str) else None), str(error.get("message", "")), fields


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
