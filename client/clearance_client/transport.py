"""httpx transports that let the OpenAI SDK (or any httpx client) call only cleared models."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from clearance_client._gate import (
    DECISION_HEADER,
    PROFILE_HEADER,
    DecisionCache,
    ModelSpotter,
    Refusal,
    RouteMap,
    RouteSpec,
    check_models,
    refusal_for_error,
)
from clearance_client.client import AsyncClient, Client
from clearance_client.errors import ClearanceError
from clearance_client.models import Decision


class _Settings:
    def __init__(self, *, app_id: str, workload: Mapping[str, Any] | None, workload_profile: str | None,
                 context: Mapping[str, Any] | None, model_map: Mapping[str, RouteSpec] | None,
                 deployment: str | None, ttl_seconds: float) -> None:
        if workload is None and workload_profile is None:
            raise ValueError("give the workload the requests serve, or one of the app's workload profiles")
        self.app_id = app_id
        self.workload = None if workload is None else dict(workload)
        self.profile = workload_profile
        self.context = None if context is None else dict(context)
        self.routes = RouteMap(model_map, deployment)
        self.cache = DecisionCache(ttl_seconds)
        self.spotter = ModelSpotter()

    def profile_for(self, request: httpx.Request) -> str | None:
        # A per-request profile (header) is removed before the request is forwarded.
        profile = request.headers.get(PROFILE_HEADER)
        if profile is not None:
            del request.headers[PROFILE_HEADER]
            return profile
        return self.profile

    def workload_for(self, profile: str | None) -> Mapping[str, Any] | None:
        # A request-chosen profile replaces the configured workload rather than merging with it.
        return self.workload if profile == self.profile else None


def _mark(response: httpx.Response, decision: Decision) -> httpx.Response:
    response.headers[DECISION_HEADER] = decision.decision_id
    return response


class ClearanceTransport(httpx.BaseTransport):
    """Wraps an httpx transport: a request that names a model is forwarded only when Clearance's
    decision for the app's workload clears that model; otherwise the SDK gets a 403 in OpenAI's
    error shape listing the reason codes (``openai.PermissionDeniedError``).

    Use it as ``openai.OpenAI(http_client=httpx.Client(transport=ClearanceTransport(...)))``.

    Parameters:
        clearance: a ``Client`` (give it ``trusted_keys`` to verify every decision's receipt).
        app_id: the app the requests are made for.
        workload: the workload fields the requests serve, or None with ``workload_profile``.
        workload_profile: one of the app's registered profiles; a request may name another with
            the ``X-Clearance-Workload-Profile`` header (removed before forwarding).
        context: recorded with each decision (e.g. ``{"trace_id": …}``).
        model_map: request model name -> catalog model id, ``(model, deployment)`` route, or a
            list of routes (all must be cleared); unmapped names are taken as catalog model ids.
        deployment: the deployment the inner transport reaches, for names mapped to a bare model id.
        ttl_seconds: how long one decision per workload is reused (default 30; 0 = every request).
        inner: the transport that really sends requests (default ``httpx.HTTPTransport()``).

    Every way Clearance can fail (unreachable, 5xx, refusal, malformed answer, bad receipt) is a
    refusal too: nothing is forwarded without a decision that clears the model.
    """

    def __init__(self, clearance: Client, *, app_id: str, workload: Mapping[str, Any] | None = None,
                 workload_profile: str | None = None, context: Mapping[str, Any] | None = None,
                 model_map: Mapping[str, RouteSpec] | None = None, deployment: str | None = None,
                 ttl_seconds: float = 30.0, inner: httpx.BaseTransport | None = None) -> None:
        self._clearance = clearance
        self._settings = _Settings(app_id=app_id, workload=workload, workload_profile=workload_profile,
                                   context=context, model_map=model_map, deployment=deployment,
                                   ttl_seconds=ttl_seconds)
        self._inner = inner or httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._key_locks: dict[bytes, threading.Lock] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        s = self._settings
        profile = s.profile_for(request)
        models = s.spotter.spot(request, request.read())
        if isinstance(models, Refusal):
            return models.response(request)
        if not models:
            return self._inner.handle_request(request)
        try:
            decision = self._decision(profile)
        except ClearanceError as exc:
            return refusal_for_error(exc).response(request)
        refusal = check_models(decision, models, s.routes)
        if refusal is not None:
            return refusal.response(request)
        return _mark(self._inner.handle_request(request), decision)

    def _decision(self, profile: str | None) -> Decision:
        s = self._settings
        workload = s.workload_for(profile)
        key = s.cache.key(workload, profile)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one decision in flight per workload
            decision = s.cache.get(key)
            if decision is None:
                decision = self._clearance.decide(s.app_id, workload, s.context, profile)
                s.cache.put(key, decision)
            return decision

    def close(self) -> None:
        self._inner.close()


class AsyncClearanceTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of ``ClearanceTransport`` (for ``openai.AsyncOpenAI``): same parameters,
    with an ``AsyncClient`` and an ``httpx.AsyncBaseTransport`` as ``inner``."""

    def __init__(self, clearance: AsyncClient, *, app_id: str, workload: Mapping[str, Any] | None = None,
                 workload_profile: str | None = None, context: Mapping[str, Any] | None = None,
                 model_map: Mapping[str, RouteSpec] | None = None, deployment: str | None = None,
                 ttl_seconds: float = 30.0, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._clearance = clearance
        self._settings = _Settings(app_id=app_id, workload=workload, workload_profile=workload_profile,
                                   context=context, model_map=model_map, deployment=deployment,
                                   ttl_seconds=ttl_seconds)
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._key_locks: dict[bytes, asyncio.Lock] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        s = self._settings
        profile = s.profile_for(request)
        models = s.spotter.spot(request, await request.aread())
        if isinstance(models, Refusal):
            return models.response(request)
        if not models:
            return await self._inner.handle_async_request(request)
        try:
            decision = await self._decision(profile)
        except ClearanceError as exc:
            return refusal_for_error(exc).response(request)
        refusal = check_models(decision, models, s.routes)
        if refusal is not None:
            return refusal.response(request)
        return _mark(await self._inner.handle_async_request(request), decision)

    async def _decision(self, profile: str | None) -> Decision:
        s = self._settings
        workload = s.workload_for(profile)
        key = s.cache.key(workload, profile)
        key_lock = self._key_locks.setdefault(key, asyncio.Lock())
        async with key_lock:
            decision = s.cache.get(key)
            if decision is None:
                decision = await self._clearance.decide(s.app_id, workload, s.context, profile)
                s.cache.put(key, decision)
            return decision

    async def aclose(self) -> None:
        await self._inner.aclose()
