"""The transports' shared logic: which models a request names, whether the decision clears
them, the refusal answered instead, and the per-workload decision cache."""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from clearance_client._jcs import canonical_bytes
from clearance_client.errors import (
    ClearanceError,
    Forbidden,
    InvalidRequest,
    ReceiptError,
    Unavailable,
)
from clearance_client.models import Decision

PROFILE_HEADER = "x-clearance-workload-profile"
DECISION_HEADER = "x-clearance-decision-id"

# OpenAI-style endpoints that always run a model: a request to one that names no model is
# refused, since the provider would pick a default nobody checked. Batches name their models
# inside an uploaded file, which the transport cannot see when the batch is created.
_MODEL_ENDPOINT = re.compile(
    r"/(chat/completions|completions|responses|embeddings|moderations"
    r"|images/(generations|edits|variations)|audio/(speech|transcriptions|translations)"
    r"|realtime/(sessions|transcription_sessions|client_secrets)|fine_tuning/jobs|assistants"
    r"|threads/runs|threads/[^/]+/runs|batches)/?$",
    re.IGNORECASE,
)
_AZURE_DEPLOYMENT = re.compile(r"/deployments/([^/]+)/")
_MAX_DEPTH = 64

RouteSpec = str | tuple[str, str] | Sequence[str | tuple[str, str]]


@dataclass(frozen=True)
class Refusal:
    """An answer given instead of forwarding the request (OpenAI's error shape)."""

    status: int
    code: str
    message: str
    param: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def response(self, request: httpx.Request) -> httpx.Response:
        error = {"message": self.message, "type": "clearance_refusal", "param": self.param, "code": self.code,
                 **self.extra}
        headers = {"x-clearance-refused": self.code}
        if self.status != 503:
            # Asking again gets the same answer (and records another decision); only an outage
            # may clear up, so the OpenAI SDK's own retries are left on for 503 alone.
            headers["x-should-retry"] = "false"
        return httpx.Response(self.status, json={"error": error}, request=request, headers=headers)


def refusal_for_error(exc: ClearanceError) -> Refusal:
    """Clearance could not give a usable decision: refuse, saying why (never forward)."""
    if isinstance(exc, Unavailable):
        return Refusal(503, "clearance_unavailable",
                       f"Clearance is unavailable, so no model is cleared for this request: {exc}")
    if isinstance(exc, Forbidden):
        return Refusal(403, "clearance_forbidden",
                       f"Clearance refused to decide for this app with the configured key: {exc}")
    if isinstance(exc, InvalidRequest):
        fields = [{"field": f.field, "reason": f.reason} for f in exc.fields]
        return Refusal(400, "clearance_invalid_workload",
                       f"Clearance rejected the configured workload: {exc}", extra={"fields": fields})
    if isinstance(exc, ReceiptError):
        return Refusal(502, "clearance_receipt_invalid", f"Clearance's decision did not verify: {exc}")
    return Refusal(502, "clearance_bad_answer", f"Clearance gave no usable decision: {exc}")


class ModelSpotter:
    """Finds every model a request names: string values of ``model`` members anywhere in a JSON
    body (nested ones run models too: tools, realtime sessions, eval runs), ``model`` form
    fields, a ``model`` query parameter and an Azure-style ``/deployments/{name}/`` path."""

    def spot(self, request: httpx.Request, body: bytes) -> list[str] | Refusal:
        path = request.url.path
        needs_model = request.method == "POST" and _MODEL_ENDPOINT.search(path) is not None
        models: list[str] = [v for k, v in parse_qsl(request.url.query.decode("ascii", "replace")) if k == "model"]
        models += _AZURE_DEPLOYMENT.findall(path)
        content_type = request.headers.get("content-type", "").lower()
        if body:
            if "json" in content_type or (not content_type.startswith("multipart/")
                                          and body.lstrip()[:1] in (b"{", b"[")):
                found = _json_models(body)
            elif needs_model and content_type.startswith("multipart/form-data"):
                found = _multipart_models(body, request.headers["content-type"])
            elif needs_model and content_type.startswith("application/x-www-form-urlencoded"):
                found = [v for k, v in parse_qsl(body.decode("utf-8", "replace")) if k == "model"]
            elif needs_model:
                found = Refusal(403, "model_unverifiable", f"the body ({content_type or 'no content type'}) "
                                "cannot be read to find the model it names", param="model")
            else:
                found = []
            if isinstance(found, Refusal):
                return found
            models += found
        if needs_model and not models:
            what = ("batch jobs name their models in an uploaded file, which cannot be checked here"
                    if path.rstrip("/").endswith("/batches") else "the provider would choose a default model")
            return Refusal(403, "model_unverifiable", f"the request to {path} names no model: {what}",
                           param="model")
        return list(dict.fromkeys(models))


def _json_models(body: bytes) -> list[str] | Refusal:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if "model" in keys and keys.count("model") > 1:
            raise _Duplicate
        return dict(items)

    try:
        data = json.loads(body, object_pairs_hook=pairs)
    except _Duplicate:
        return Refusal(403, "model_unverifiable", "the body names 'model' twice in one object", param="model")
    except (ValueError, RecursionError):
        return Refusal(403, "model_unverifiable", "the JSON body cannot be parsed to find its model", param="model")
    found: list[str] = []
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return Refusal(403, "model_unverifiable", "the JSON body is nested too deeply to check", param="model")
        if isinstance(value, dict):
            model = value.get("model")
            if "model" in value and not isinstance(model, (str, dict, list, type(None))):
                return Refusal(403, "model_unverifiable", f"'model' is not a string: {model!r}", param="model")
            if isinstance(model, str):
                found.append(model)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return found


class _Duplicate(Exception):
    pass


def _multipart_models(body: bytes, content_type: str) -> list[str] | Refusal:
    try:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        found = []
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "model" and part.get_filename() is None:
                found.append(part.get_payload(decode=True).decode("utf-8"))
        return found
    except (ValueError, UnicodeError, TypeError, AttributeError, LookupError):
        return Refusal(403, "model_unverifiable", "the multipart body cannot be parsed to find its model",
                       param="model")


class RouteMap:
    """How the names an app sends map to catalog routes.

    ``model_map`` maps a request's model name to a catalog model id (served through
    ``deployment``), a ``(model, deployment)`` route, or a list of them (an alias any of them may
    serve: all must be cleared). A name missing from the map is taken as a catalog model id.
    A model id without a deployment is cleared only if every route of it the decision lists is.
    """

    def __init__(self, model_map: Mapping[str, RouteSpec] | None, deployment: str | None) -> None:
        self._map = dict(model_map or {})
        self._deployment = deployment
        for name, spec in self._map.items():
            self._routes(name, spec)  # fail at construction, not on the first request

    def routes(self, name: str) -> list[tuple[str, str | None]]:
        return self._routes(name, self._map.get(name, name))

    def _routes(self, name: str, spec: RouteSpec) -> list[tuple[str, str | None]]:
        items = [spec] if isinstance(spec, (str, tuple)) else list(spec)
        out: list[tuple[str, str | None]] = []
        for item in items:
            if isinstance(item, str):
                out.append((item, self._deployment))
            elif isinstance(item, tuple) and len(item) == 2 and all(isinstance(p, str) for p in item):
                out.append((item[0], item[1]))
            else:
                raise TypeError(f"model_map[{name!r}] holds {item!r}: use a catalog model id, "
                                "a (model, deployment) pair, or a list of them")
        if not out:
            raise TypeError(f"model_map[{name!r}] is empty")
        return out


def check_models(decision: Decision, names: Sequence[str], routes: RouteMap) -> Refusal | None:
    """None when every route behind every named model is cleared; else the refusal listing why."""
    refused = []
    for name in names:
        for model, deployment in routes.routes(name):
            cleared = decision.cleared(model, deployment)
            denied = decision.denials(model, deployment)
            if cleared and (deployment is not None or not denied):
                continue
            if denied:
                for d in denied:
                    refused.append({"model": name, "catalog_model": d.model, "deployment": d.deployment,
                                    "codes": list(d.codes), "messages": [r.message for r in d.reasons]})
            else:
                refused.append({"model": name, "catalog_model": model, "deployment": deployment,
                                "codes": ["ROUTE_NOT_IN_DECISION"],
                                "messages": ["the decision lists no such route: check model_map and deployment"]})
    if not refused:
        return None
    summary = "; ".join(
        f"{r['model']} via {r['deployment'] or 'any deployment'}: {', '.join(r['codes'])}" for r in refused)
    return Refusal(403, "model_not_cleared",
                   f"Clearance has not cleared this model for the workload ({summary}); "
                   f"decision {decision.decision_id}", param="model",
                   extra={"decision_id": decision.decision_id, "reasons": refused})


@dataclass
class _Entry:
    decision: Decision
    expires: float


class DecisionCache:
    """Decisions per workload, each kept ``ttl`` seconds; errors are never cached."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}

    @staticmethod
    def key(workload: Mapping[str, Any] | None, profile: str | None) -> bytes:
        return canonical_bytes({"workload": workload, "profile": profile})

    def get(self, key: bytes) -> Decision | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry.expires:
            return None
        return entry.decision

    def put(self, key: bytes, decision: Decision) -> None:
        if self.ttl > 0:
            self._entries[key] = _Entry(decision, self._clock() + self.ttl)
