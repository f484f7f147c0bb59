"""Request dependencies: the services of this app and the verified caller.

401 answers "who are you?" (no key, malformed, unknown or revoked); 403 answers "you may not"
(a valid key whose role or app does not allow the call). HTTP errors are raised only here and
in the routers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.apikeys import Principal, Role
from api.errors import ApiError
from api.services import Services

_bearer = HTTPBearer(auto_error=False, description="An API key from `clearance apikeys create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    principal = services.keys.verify(credentials.credentials)
    if principal is None:
        # Never echo the presented key: it may be a real secret pasted in the wrong place.
        raise ApiError(401, "unauthorized", "the API key is malformed, unknown or revoked", headers=_CHALLENGE)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets only these roles through (403 otherwise)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise ApiError(403, "forbidden", f"a {principal.role.value} key may not do this; it needs the {allowed} role")
        return principal

    return check


AppCaller = Annotated[Principal, Depends(require(Role.app))]
# Separation of duties: those who change policy do not read the trail, and vice versa.
Auditor = Annotated[Principal, Depends(require(Role.auditor))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
