"""Request dependencies: the services of this app and the verified caller.

401 answers "who are you?" (no key, malformed, unknown or revoked); 403 answers "you may not"
(a valid key whose role or app does not allow the call). HTTP errors are raised only here and
in the routers.

The two hot endpoints (``POST /v1/decisions`` and ``/v1/policy/simulate``) call
:func:`authenticate` and :func:`read_body` directly instead of declaring dependencies: FastAPI's
dependency solving costs ~50 µs per request for a chain of four (measured, docs/performance.md),
a third of the unaudited request. :func:`documented` keeps their OpenAPI description whole.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from api.apikeys import MISS, Principal, Role
from api.errors import ApiError
from api.services import Services
from policy import strict_json

_bearer = HTTPBearer(auto_error=False, description="An API key from `clearance apikeys create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
Model = TypeVar("Model", bound=BaseModel)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def authenticate(request: Request, *roles: Role) -> Principal:
    """The caller of ``request`` (401 unless a valid key), limited to ``roles`` if given (403).

    A key the caches do not know is looked up on the key-lookup threads, never on the event
    loop, together with the other keys missed meanwhile (``api/key_misses.py``): a busy database
    delays those callers, not every request. A cached
    key due for renewal is renewed on threads of their own, so that no backlog of misses
    delays it past its answer's expiry."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    return await authenticate_token(request, token, *roles)


async def authenticate_token(request: Request, token: str | None, *roles: Role) -> Principal:
    """:func:`authenticate` for a key presented otherwise (LiteLLM sends ``x-api-key``)."""
    if not token:
        raise ApiError(401, "unauthorized", "missing API key", headers=_CHALLENGE)
    services = services_of(request)
    principal = services.keys.cached(token)
    if principal is MISS:
        services.metrics.apikey_lookups.labels(why="miss").inc()
        principal = await services.key_misses.verify(token)  # read with the other misses of the moment
    elif principal is not None and services.keys.claim_refresh(token):
        services.metrics.apikey_lookups.labels(why="renewal").inc()
        services.key_renewals.start(services.keys.refresh, token)  # before it expires, beside the misses
    if not isinstance(principal, Principal):
        # Never echo the presented key: it may be a real secret pasted in the wrong place.
        raise ApiError(401, "unauthorized", "the API key is malformed, unknown or revoked", headers=_CHALLENGE)
    if roles and principal.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise ApiError(403, "forbidden", f"a {principal.role.value} key may not do this; it needs the {allowed} role")
    return principal


async def read_body(request: Request, model: type[Model]) -> Model:
    """The JSON body validated as ``model``; errors as FastAPI's own body validation reports
    them (400 for JSON that does not parse, 422 naming each field). Like FastAPI, a body sent
    with a Content-Type other than JSON (``application/json``, ``…+json``) is not parsed. An
    object with a repeated key raises ``DuplicateKey`` (400): one parse does both
    (``policy.strict_json``), then the schema validates the parsed document."""
    body = await request.body()
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    if not _is_json(request.headers.get("content-type")):
        raise RequestValidationError([{"type": "model_attributes_type", "loc": ("body",), "input": None,
                                       "msg": "Input should be a JSON object sent as application/json"}])
    try:
        document = strict_json.loads(body)
    except strict_json.MalformedJson as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "input": None,
                                       "msg": f"JSON decode error: {exc}"}]) from None
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) from None


def _is_json(content_type: str | None) -> bool:
    if content_type is None:  # FastAPI reads a body without Content-Type as JSON too
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def documented(model: type[BaseModel], examples: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for an endpoint that reads ``model`` with :func:`read_body`: the
    request body and the bearer scheme, as FastAPI would document a declared parameter."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{model.__name__}"}, "examples": examples}},
        },
        "security": [{"HTTPBearer": []}],
    }


async def current_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],  # documents the scheme
) -> Principal:
    return await authenticate(request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets only these roles through (403 otherwise)."""

    async def check(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        return await authenticate(request, *roles)

    return check


# Separation of duties: those who change policy do not read the trail, and vice versa.
Auditor = Annotated[Principal, Depends(require(Role.auditor))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
