"""Asking Clearance for a decision: ``Client`` (blocking) and ``AsyncClient`` (asyncio)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from clearance_client import _http
from clearance_client._note import VerifierKey, parse_verifier_keys
from clearance_client.models import Decision
from clearance_client.receipt import verify_receipt

TrustedKeys = str | Iterable[str | VerifierKey]


class _Config:
    """Settings shared by both clients; see ``Client`` for their meaning."""

    def __init__(self, base_url: str, api_key: str | None, trusted_keys: TrustedKeys | None) -> None:
        if not base_url or not isinstance(base_url, str):
            raise ValueError("base_url is Clearance's address, e.g. 'http://127.0.0.1:8000'")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.trusted_keys = None if trusted_keys is None else parse_verifier_keys(trusted_keys)

    def checked(self, decision: Decision, app_id: str) -> Decision:
        if self.trusted_keys is not None:
            verify_receipt(decision, self.trusted_keys, app_id=app_id)
        return decision

    @staticmethod
    def from_env() -> dict[str, Any]:
        """Settings from CLEARANCE_URL, CLEARANCE_API_KEY and CLEARANCE_TRUSTED_KEYS (a keys file)."""
        url = os.environ.get("CLEARANCE_URL")
        if not url:
            raise ValueError("set CLEARANCE_URL to Clearance's address, e.g. http://127.0.0.1:8000")
        keys_file = os.environ.get("CLEARANCE_TRUSTED_KEYS")
        return {"base_url": url, "api_key": os.environ.get("CLEARANCE_API_KEY"),
                "trusted_keys": Path(keys_file).read_text(encoding="utf-8") if keys_file else None}


class Client:
    """A blocking client for Clearance's decision API.

    Parameters:
        base_url: Clearance's address, e.g. ``"http://127.0.0.1:8000"``.
        api_key: the app's (or gateway's) API key, sent as ``Authorization: Bearer``.
        timeout: seconds (or an ``httpx.Timeout``) before a request counts as unavailable;
            default 5 s, 2 s to connect.
        trusted_keys: the log's verifier keys; when given, every decision's receipt is verified
            (``verify_receipt``) before ``decide`` returns it, and a failure raises ``ReceiptError``.
        transport: an httpx transport (tests, proxies); ignored when ``http_client`` is given.
        http_client: an ``httpx.Client`` to use as is (the caller closes it).

    Every failure raises a ``ClearanceError``; no error is ever a decision.
    """

    def __init__(self, base_url: str, api_key: str | None = None, *,
                 timeout: float | httpx.Timeout = _http.DEFAULT_TIMEOUT, trusted_keys: TrustedKeys | None = None,
                 transport: httpx.BaseTransport | None = None, http_client: httpx.Client | None = None) -> None:
        self._config = _Config(base_url, api_key, trusted_keys)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """A client configured from CLEARANCE_URL, CLEARANCE_API_KEY, CLEARANCE_TRUSTED_KEYS."""
        return cls(**{**_Config.from_env(), **kwargs})

    def decide(self, app_id: str, workload: Mapping[str, Any] | None, context: Mapping[str, Any] | None = None,
               workload_profile: str | None = None) -> Decision:
        """Ask which routes may serve ``workload`` for ``app_id``; the decision is recorded by Clearance.

        ``workload`` may be None when ``workload_profile`` names one of the app's registered profiles.
        Raises ``Unavailable`` (503, 5xx, 429, network, timeout), ``Forbidden``/``Unauthorized``,
        ``InvalidRequest`` (with ``fields``), ``UnexpectedResponse`` or ``ReceiptError``.
        """
        body = _http.decision_body(app_id, workload, context, workload_profile)
        try:
            response = self._http.post(self._config.base_url + _http.DECISIONS_PATH, json=body,
                                       headers=_http.headers(self._config.api_key))
        except httpx.HTTPError as exc:
            raise _http.transport_error(exc) from exc
        return self._config.checked(_http.read_decision(response), app_id)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._config.base_url!r})"  # never the key


class AsyncClient:
    """The asyncio twin of ``Client``: same parameters, ``await client.decide(...)``."""

    def __init__(self, base_url: str, api_key: str | None = None, *,
                 timeout: float | httpx.Timeout = _http.DEFAULT_TIMEOUT, trusted_keys: TrustedKeys | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 http_client: httpx.AsyncClient | None = None) -> None:
        self._config = _Config(base_url, api_key, trusted_keys)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport)

    @classmethod
    def from_env(cls, **kwargs: Any) -> AsyncClient:
        return cls(**{**_Config.from_env(), **kwargs})

    async def decide(self, app_id: str, workload: Mapping[str, Any] | None,
                     context: Mapping[str, Any] | None = None, workload_profile: str | None = None) -> Decision:
        """See ``Client.decide``."""
        body = _http.decision_body(app_id, workload, context, workload_profile)
        try:
            response = await self._http.post(self._config.base_url + _http.DECISIONS_PATH, json=body,
                                             headers=_http.headers(self._config.api_key))
        except httpx.HTTPError as exc:
            raise _http.transport_error(exc) from exc
        return self._config.checked(_http.read_decision(response), app_id)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient({self._config.base_url!r})"
