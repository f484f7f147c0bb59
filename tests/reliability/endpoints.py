"""The one table of every HTTP endpoint and who may call it (the authorization matrix and the
fuzzer both read it), and the routes the app really has, to check the table against.

The table and the app must list the same routes: a route the app has and the table lacks, or a
row for a route the app does not have, fails ``test_the_table_and_the_app_have_the_same_routes``
(and that row's cells fail too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import FastAPI


class Access(StrEnum):
    public = "public"  # no key needed; a key, even a bad one, changes nothing
    any_key = "any_key"  # any valid key
    app = "app"  # an app key, deciding for its own app_id
    caller_app = "caller_app"  # an app key (for its own app) or a gateway key (for an app of its list)
    reporter = "reporter"  # the decision's own app key, or a gateway key listing that app
    gateway = "gateway"  # a gateway key, for an app of its list
    # A gateway's native contract: every caller gets 200, and every refusal is a verdict in the
    # body (LiteLLM's "action": "BLOCKED", Portkey's "verdict": false), never an error status.
    gateway_in_body = "gateway_in_body"
    auditor = "auditor"
    admin = "admin"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route's path template, as the app declares it
    access: Access
    sample: str | None = None  # the concrete path to call (placeholders filled by the test)
    decision_body: bool = False  # sends a decision request as its JSON body
    ok: int = 200  # the status an allowed caller gets
    body: dict[str, Any] | None = None  # another JSON body to send
    key_header: str = "authorization"  # where the key goes (LiteLLM's guardrail sends x-api-key)

    @property
    def route(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/v1/decisions", Access.app, decision_body=True),
    Endpoint("POST", "/v1/decisions/{decision_id}/served", Access.reporter,
             sample="/v1/decisions/{decision_id}/served", body={"model": "gemma-4-31b", "deployment": "self-hosted"}),
    Endpoint("GET", "/v1/models", Access.caller_app, sample="/v1/models?team=claims-platform"),
    Endpoint("POST", "/v1/gateways/{gateway}/check", Access.gateway, sample="/v1/gateways/litellm-main/check",
             body={"team": "claims-platform", "route": "openai/gpt-5.4"}),
    Endpoint("POST", "/v1/gateways/{gateway}/litellm/beta/litellm_basic_guardrail_api", Access.gateway_in_body,
             sample="/v1/gateways/litellm-main/litellm/beta/litellm_basic_guardrail_api", key_header="x-api-key",
             body={"input_type": "request", "model": "frontier",
                   "request_data": {"user_api_key_team_alias": "claims-platform"}}),
    Endpoint("POST", "/v1/gateways/{gateway}/portkey/webhook", Access.gateway_in_body,
             sample="/v1/gateways/litellm-main/portkey/webhook",
             body={"request": {"json": {"model": "gpt-5.4"}}, "provider": "openai",
                   "eventType": "beforeRequestHook", "metadata": {"team": "claims-platform"}}),
    Endpoint("GET", "/v1/decisions/{decision_id}", Access.auditor, sample="/v1/decisions/{decision_id}"),
    Endpoint("GET", "/v1/audit/decisions", Access.auditor, sample="/v1/audit/decisions?limit=5"),
    Endpoint("GET", "/v1/audit/stats", Access.auditor, sample="/v1/audit/stats?group_by=outcome"),
    Endpoint("GET", "/v1/audit/export", Access.auditor, sample="/v1/audit/export?format=jsonl"),
    Endpoint("GET", "/v1/audit/report", Access.auditor,
             sample="/v1/audit/report?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z"),
    Endpoint("GET", "/v1/audit/verify", Access.auditor),
    Endpoint("GET", "/v1/audit/keys", Access.public),
    Endpoint("GET", "/v1/audit/checkpoint", Access.auditor),
    Endpoint("GET", "/v1/audit/proof/inclusion", Access.auditor, sample="/v1/audit/proof/inclusion?seq=1&size=1"),
    Endpoint("GET", "/v1/audit/proof/consistency", Access.auditor,
             sample="/v1/audit/proof/consistency?from=1&to=1"),
    Endpoint("GET", "/v1/audit/tlog/checkpoint", Access.auditor),
    Endpoint("GET", "/v1/audit/tlog/{path:path}", Access.auditor, sample="/v1/audit/tlog/{tile}"),
    Endpoint("GET", "/v1/policy", Access.any_key),
    Endpoint("POST", "/v1/policy/reload", Access.admin),
    Endpoint("POST", "/v1/policy/simulate", Access.admin, decision_body=True),
    Endpoint("GET", "/healthz", Access.public),
    Endpoint("GET", "/readyz", Access.public),
    Endpoint("GET", "/metrics", Access.public),
    Endpoint("GET", "/ui", Access.public),  # the page asks for an auditor key itself
    Endpoint("GET", "/ui/", Access.public, ok=307),
    Endpoint("GET", "/ui/static/{name}", Access.public, sample="/ui/static/app.js"),
    Endpoint("GET", "/openapi.json", Access.public),
    Endpoint("GET", "/docs", Access.public),
    Endpoint("GET", "/docs/static/{name}", Access.public, sample="/docs/static/swagger-ui-bundle.js"),
]
BY_ROUTE = {e.route: e for e in ENDPOINTS}


def current_tile(client: Any, auditor_headers: dict[str, str]) -> str:
    """The level-0 tile path of the log's current tree (a partial tile has exactly the tree's
    width, so the sample of ``/v1/audit/tlog/{path}`` is read from the newest checkpoint)."""
    note = client.get("/v1/audit/checkpoint", headers=auditor_headers)
    assert note.status_code == 200, note.text
    size = int(note.text.splitlines()[1])
    full, width = divmod(size, 256)
    return f"tile/0/{full:03d}.p/{width}" if width else f"tile/0/{full - 1:03d}"


def documented_route(method: str, path: str) -> tuple[str, str]:
    """The route of an OpenAPI operation: the document writes ``{path:path}`` as ``{path}``."""
    if (method, path) in BY_ROUTE:
        return method, path
    return method, re.sub(r"\{(\w+)\}$", r"{\1:path}", path)

CALLERS = ("no_key", "malformed_key", "unknown_key", "revoked_key", "app_own", "app_other", "gateway",
           "gateway_other", "auditor", "admin")


def expected_status(endpoint: Endpoint, caller: str) -> int:
    """What ``caller`` gets from ``endpoint``: the rule the whole matrix is generated from.

    ``app_other`` holds a valid app key of another app and sends the same request as
    ``app_own`` (for ``POST /v1/decisions``: a body naming ``app_own``'s app). ``gateway`` holds
    a gateway key of litellm-main listing ``app_own``'s app; ``gateway_other`` one that does not.
    """
    if endpoint.access in (Access.public, Access.gateway_in_body):
        return endpoint.ok
    if caller in ("no_key", "malformed_key", "unknown_key", "revoked_key"):
        return 401
    allowed = {
        Access.any_key: {"app_own", "app_other", "gateway", "gateway_other", "auditor", "admin"},
        Access.app: {"app_own"},
        # app_other lists its own app's models; gateway_other's caller maps to an app outside its list.
        Access.caller_app: {"app_own", "app_other", "gateway"},
        Access.reporter: {"app_own", "gateway"},
        Access.gateway: {"gateway"},
        Access.auditor: {"auditor"},
        Access.admin: {"admin"},
    }[endpoint.access]
    return endpoint.ok if caller in allowed else 403


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app routes, HEAD aside, however FastAPI nests its routers."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Iterable[Any]) -> None:
        for route in routes:
            effective = getattr(route, "effective_route_contexts", None)
            if callable(effective):  # FastAPI >= 0.165 wraps included routers
                walk(effective())
                continue
            if getattr(route, "routes", None) is not None and getattr(route, "methods", None) is None:
                walk(route.routes)  # a Mount or a plain included router
                continue
            path = getattr(route, "path", None)
            for method in getattr(route, "methods", None) or ():
                if path is not None and method != "HEAD":
                    found.add((method, path))

    walk(app.routes)
    return found
