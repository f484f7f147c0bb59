"""Clearance as a LiteLLM proxy guardrail: ``clearance_client.litellm.ClearanceGuardrail``.

Optional module: it imports ``litellm`` (install the proxy as you run it; this package does not
depend on it). In the proxy's config::

    guardrails:
      - guardrail_name: clearance
        litellm_params:
          guardrail: clearance_client.litellm.ClearanceGuardrail
          mode: pre_call
          default_on: true
          api_base: http://127.0.0.1:8000        # Clearance
          api_key: os.environ/CLEARANCE_GATEWAY_KEY
          gateway: litellm-main                  # its name in Clearance's gateways.yaml
          substitute: true                       # swap an uncleared model for the best cleared one

What it does, for every call of the proxy:

1. **Before routing** (``async_pre_call_hook``): asks Clearance's check about the model group the
   client sent and every group the key may call. When no deployment of the requested group is
   cleared, it substitutes the best-ranked cleared group (``substitute: true``) or refuses with 403.
2. **On every attempt** (``async_pre_call_deployment_hook``, overridden here: the base class's
   version runs only for requests naming the guardrail, only for completions, and not after the
   proxy-level hook ran): asks about the deployment the router resolved — fallbacks and retries
   included — and refuses it unless that exact route is cleared. The router then tries its next
   deployment, which is checked in turn; when none is left the client gets the refusal.
3. **After a success** (``async_post_call_success_deployment_hook``): reports the deployment that
   served to ``POST /v1/decisions/{id}/served``.
4. ``/v1/models`` of the proxy lists only the groups with a cleared deployment.

It fails closed: Clearance unreachable, slow, refusing the key or answering nonsense means the
call is refused (503), never forwarded. The caller's identities (team alias or id, key alias)
are what the proxy authenticated; Clearance maps them to the app (gateways.yaml).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from fastapi import HTTPException
from litellm.integrations.custom_guardrail import CustomGuardrail

log = logging.getLogger("clearance_client.litellm")
_PENDING: set[asyncio.Task[Any]] = set()  # served reports in flight (kept referenced until done)


class ClearanceRefusal(HTTPException):
    """A call Clearance did not clear (403), or could not judge (503): what the client receives."""

    def __init__(self, status: int, message: str, **detail: Any) -> None:
        super().__init__(status_code=status, detail={"error": {
            "message": message, "type": "clearance_refusal", "code": detail.pop("code", "model_not_cleared"),
            **detail}})


class ClearanceGuardrail(CustomGuardrail):
    """See the module's docstring. Parameters (``litellm_params`` of the guardrail):

    api_base: Clearance's address (default ``CLEARANCE_URL``).
    api_key: a Clearance ``gateway`` key (default ``CLEARANCE_API_KEY``).
    gateway: this proxy's name in Clearance's gateways.yaml (default ``CLEARANCE_GATEWAY``).
    workload_profile: the app's workload profile to decide (default: the app's default_workload).
    substitute: swap a model group with no cleared deployment for the best-ranked cleared group
        the key may call (default true); false refuses it.
    report_served: report the deployment that served (default true).
    timeout: seconds for each request to Clearance (default 5); slower counts as unreachable.
    """

    def __init__(self, *, api_base: str | None = None, api_key: str | None = None, gateway: str | None = None,
                 workload_profile: str | None = None, substitute: bool = True, report_served: bool = True,
                 timeout: float = 5.0, **kwargs: Any) -> None:
        self.clearance_url = (api_base or os.environ.get("CLEARANCE_URL") or "").rstrip("/")
        self._key = api_key or os.environ.get("CLEARANCE_API_KEY")
        self.gateway = gateway or os.environ.get("CLEARANCE_GATEWAY")
        if not self.clearance_url or not self._key or not self.gateway:
            raise ValueError("ClearanceGuardrail needs api_base (Clearance's URL), api_key (a gateway key) and "
                             "gateway (the proxy's name in Clearance's gateways.yaml)")
        self.workload_profile = workload_profile
        self.substitute = substitute
        self.report_served = report_served
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 2.0))
        self._http: httpx.AsyncClient | None = None
        kwargs.pop("api_key", None)
        super().__init__(**kwargs)

    # -- talking to Clearance --------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        # Made on first use, inside the proxy's event loop.
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout,
                                           headers={"Authorization": f"Bearer {self._key}"})
        return self._http

    async def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Clearance's answer, or a 503 refusal: every failure fails closed."""
        try:
            response = await self._client().post(self.clearance_url + path, json=body)
        except httpx.HTTPError as exc:
            raise ClearanceRefusal(503, f"Clearance is unreachable, so no model is cleared: {type(exc).__name__}",
                                   code="clearance_unavailable") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200 or not isinstance(answer, dict):
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            message = error.get("message") if isinstance(error, dict) else None
            status = 403 if response.status_code in (401, 403, 422) else 503
            raise ClearanceRefusal(status, f"Clearance refused to decide this call (HTTP {response.status_code}): "
                                           f"{message or response.text[:200]}", code="clearance_refused")
        return answer

    async def _check(self, identity: Mapping[str, str | None], **question: Any) -> dict[str, Any]:
        body = {**identity, "workload_profile": self.workload_profile, **question}
        answer = await self._post(f"/v1/gateways/{self.gateway}/check", body)
        if not isinstance(answer.get("allowed"), bool) or not isinstance(answer.get("decision_id"), str):
            raise ClearanceRefusal(503, "Clearance's answer is not a check", code="clearance_bad_answer")
        return answer

    # -- 1. before routing: the model group ------------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> dict:
        requested = data.get("model")
        if not isinstance(requested, str):
            raise ClearanceRefusal(403, "the request names no model", code="model_unverifiable")
        identity = _identity_of_key(user_api_key_dict)
        groups = _groups(user_api_key_dict, requested)
        answer = await self._check(identity, candidates=groups, context=_context(data, requested))
        verdict = answer.get("candidates", {}).get(requested)
        if verdict is not None and verdict.get("rank") is not None:
            return data  # some deployment of the group is cleared; each attempt is checked below
        substitute = answer.get("substitute")
        if self.substitute and isinstance(substitute, dict) and substitute.get("name") in groups:
            log.info("clearance: %s is not cleared; serving %s (decision %s)", requested, substitute["name"],
                     answer["decision_id"])
            data["model"] = substitute["name"]
            _metadata(data)["clearance_substituted"] = {"requested": requested, "served_as": substitute["name"],
                                                        "decision_id": answer["decision_id"]}
            return data
        reasons = (verdict or {}).get("reasons") or []
        raise ClearanceRefusal(403, f"Clearance has not cleared {requested} for this app "
                                    f"({', '.join(sorted({r['code'] for r in reasons})) or 'no route'}); "
                                    f"decision {answer['decision_id']}",
                               decision_id=answer["decision_id"], reasons=reasons)

    # -- 2. every attempt: the deployment --------------------------------------------------------

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> dict | None:
        route = kwargs.get("model")
        if not isinstance(route, str):
            raise ClearanceRefusal(403, "the deployment names no model", code="model_unverifiable")
        metadata = _metadata(kwargs)
        identity = _identity_of_metadata(metadata)
        requested = metadata.get("model_group") if isinstance(metadata.get("model_group"), str) else None
        answer = await self._check(identity, route=route, context=_context(kwargs, requested))
        if not answer["allowed"]:
            reasons = (answer.get("route") or {}).get("reasons") or []
            codes = ", ".join(sorted({r["code"] for r in reasons})) or "not cleared"
            raise ClearanceRefusal(403, f"Clearance has not cleared the deployment {route} ({codes}); "
                                        f"decision {answer['decision_id']}",
                                   decision_id=answer["decision_id"], reasons=reasons, deployment=route)
        metadata["clearance_decision_id"] = answer["decision_id"]
        return kwargs

    # -- 3. after a success: the route that served -----------------------------------------------

    async def async_post_call_success_deployment_hook(self, request_data: dict, response: Any,
                                                      call_type: Any) -> Any:
        metadata = _metadata(request_data)
        decision_id = metadata.get("clearance_decision_id")
        route = request_data.get("model")
        if self.report_served and isinstance(decision_id, str) and isinstance(route, str):
            body = {"gateway_route": route, "context": _context(request_data, metadata.get("model_group"))}
            task = asyncio.get_running_loop().create_task(self._report(decision_id, body))
            _PENDING.add(task)
            task.add_done_callback(_PENDING.discard)
        return response

    async def _report(self, decision_id: str, body: dict[str, Any]) -> None:
        try:
            await self._post(f"/v1/decisions/{decision_id}/served", body)
        except ClearanceRefusal as exc:  # the call has served: a lost report is logged, not raised
            log.error("clearance: the served-route report of decision %s failed: %s", decision_id, exc.detail)

    # -- 4. the proxy's model list ---------------------------------------------------------------

    async def async_filter_listed_models(self, user_api_key_dict: Any, model_names: Sequence[str]) -> Sequence[str]:
        groups = {name: _group_routes(name) for name in model_names}
        answer = await self._check(_identity_of_key(user_api_key_dict), candidates=groups)
        verdicts = answer.get("candidates", {})
        return [name for name in model_names if (verdicts.get(name) or {}).get("rank") is not None]


def _metadata(data: dict[str, Any]) -> dict[str, Any]:
    # The proxy puts the key's identities in "metadata" for completions and in "litellm_metadata"
    # for the Responses API and other endpoints.
    for name in ("metadata", "litellm_metadata"):
        value = data.get(name)
        if isinstance(value, dict) and any(k.startswith("user_api_key") or k == "model_group" for k in value):
            return value
    value = data.get("metadata")
    if not isinstance(value, dict):
        value = data["metadata"] = {}
    return value


def _identity_of_key(key: Any) -> dict[str, str | None]:
    return {"team": getattr(key, "team_alias", None) or getattr(key, "team_id", None),
            "key_alias": getattr(key, "key_alias", None)}


def _identity_of_metadata(metadata: Mapping[str, Any]) -> dict[str, str | None]:
    team = metadata.get("user_api_key_team_alias") or metadata.get("user_api_key_team_id")
    alias = metadata.get("user_api_key_alias")
    return {"team": team if isinstance(team, str) else None, "key_alias": alias if isinstance(alias, str) else None}


def _context(data: Mapping[str, Any], requested: Any) -> dict[str, Any]:
    gateway: dict[str, Any] = {}
    if isinstance(requested, str):
        gateway["requested_model"] = requested[:200]
    call_id = data.get("litellm_call_id")
    if isinstance(call_id, str):
        gateway["call_id"] = call_id[:200]
    context: dict[str, Any] = {"gateway": gateway}
    trace = data.get("litellm_trace_id")
    if isinstance(trace, str):
        context["trace_id"] = trace[:200]
    return context


def _router() -> Any:
    from litellm.proxy import proxy_server

    return proxy_server.llm_router


def _group_routes(group: str) -> list[str]:
    """The deployments (``litellm_params.model``) of a model group on the proxy's router."""
    router = _router()
    if router is None:
        return []
    return [d["litellm_params"]["model"] for d in router.get_model_list(model_name=group) or []
            if isinstance(d.get("litellm_params", {}).get("model"), str)]


def _groups(key: Any, requested: str) -> dict[str, list[str]]:
    """The requested group and every group this key may call, with their deployments."""
    router = _router()
    allowed = list(getattr(key, "models", None) or [])
    names = allowed if allowed and "*" not in allowed else (router.get_model_names() if router else [])
    groups = {name: _group_routes(name) for name in dict.fromkeys([requested, *names])}
    return {name: routes for name, routes in groups.items() if routes}
