"""The fast path of ``POST /v1/decisions`` (api/fast_path.py) answers as the FastAPI route does.

The same requests go through one app with the fast path and one without it, over the same
services: status, headers and body must agree (a decision's id, receipt and the bytes that
carry them differ; every error body is compared byte for byte)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.apikeys import Role, create_key
from api.app import create_app
from api.fast_path import FastDecisions
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.services import Services
from tests.api.conftest import Keys, bearer, make_keys, make_settings
from tests.audit.helpers import TcpProxy, proxy_to, verify_whole

# Headers an answer is judged by (uvicorn adds date and server; TestClient none).
HEADERS = ("content-type", "content-length", "www-authenticate", "retry-after", "allow", "location")
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def both(services: Services) -> Iterator[dict[str, TestClient]]:
    fast, slow = create_app(services=services), create_app(services=services, fast_decisions=False)
    assert isinstance(fast.build_middleware_stack(), FastDecisions)
    assert not isinstance(slow.build_middleware_stack(), FastDecisions)
    with (TestClient(fast, raise_server_exceptions=False) as on,
          TestClient(slow, raise_server_exceptions=False) as off):
        yield {"on": on, "off": off}


@pytest.fixture(scope="module")
def more_keys(services: Services) -> dict[str, str]:
    db = services.db
    return {
        "gateway": create_key(db, role=Role.gateway, app_id=None, apps=["internal-helpdesk"],
                              gateway="litellm-main")[0],
        "citizen": create_key(db, role=Role.app, app_id="citizen-services")[0],
        "gone": create_key(db, role=Role.app, app_id="no-such-app")[0],  # an app apps.yaml does not list
    }


def body(**changes: Any) -> bytes:
    document = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    document.update(changes)
    return json.dumps(document).encode()


def requests(keys: Keys, more: dict[str, str], limit: int) -> dict[str, dict[str, Any]]:
    """name -> the arguments of ``TestClient.request``."""
    own = bearer(keys.own_app)
    general = {"task": "qa", "quality_tier": "commodity", "regulatory_tier": "standard",
               "data_classification": "public"}
    helpdesk = {"app_id": "internal-helpdesk", "workload": general,
                "context": {"gateway": {"team": "it-service-desk"}}}
    post = "POST"
    return {
        "app key": dict(method=post, url="/v1/decisions", content=body(), headers={**own, **JSON}),
        "no content type": dict(method=post, url="/v1/decisions", content=body(), headers=own),
        "json suffix type": dict(method=post, url="/v1/decisions", content=body(),
                                 headers={**own, "Content-Type": "application/merged-patch+json; charset=utf-8"}),
        "query string": dict(method=post, url="/v1/decisions?x=1&x=2", content=body(), headers={**own, **JSON}),
        "gateway key": dict(method=post, url="/v1/decisions", content=body(**helpdesk),
                            headers={**bearer(more["gateway"]), **JSON}),
        "no key": dict(method=post, url="/v1/decisions", content=body(), headers=JSON),
        "not bearer": dict(method=post, url="/v1/decisions", content=body(),
                           headers={"Authorization": "Basic abc", **JSON}),
        "malformed key": dict(method=post, url="/v1/decisions", content=body(), headers={**bearer("nope"), **JSON}),
        "unknown key": dict(method=post, url="/v1/decisions", content=body(),
                            headers={**bearer("clr_0123456789abcdef_" + "x" * 40), **JSON}),
        "revoked key": dict(method=post, url="/v1/decisions", content=body(), headers={**bearer(keys.revoked), **JSON}),
        "auditor key": dict(method=post, url="/v1/decisions", content=body(), headers={**bearer(keys.auditor), **JSON}),
        "other app": dict(method=post, url="/v1/decisions", content=body(app_id="internal-helpdesk"),
                          headers={**own, **JSON}),
        "gateway other app": dict(method=post, url="/v1/decisions",
                                  content=body(**{**helpdesk, "app_id": "claims-summariser"}),
                                  headers={**bearer(more["gateway"]), **JSON}),
        "too large declared": dict(method=post, url="/v1/decisions",
                                   content=body(context={"request_id": "x" * limit}), headers={**own, **JSON}),
        "too large declared, no key": dict(method=post, url="/v1/decisions",
                                           content=body(context={"request_id": "x" * limit}), headers=JSON),
        "bad content length": dict(method=post, url="/v1/decisions", content=body(),
                                   headers={**own, **JSON, "Content-Length": "12x"}),
        "empty body": dict(method=post, url="/v1/decisions", content=b"", headers={**own, **JSON}),
        "text body": dict(method=post, url="/v1/decisions", content=body(),
                          headers={**own, "Content-Type": "text/plain"}),
        "malformed json": dict(method=post, url="/v1/decisions", content=b'{"app_id": ', headers={**own, **JSON}),
        "not utf-8": dict(method=post, url="/v1/decisions", content=b"\xff\xfe\x00", headers={**own, **JSON}),
        "a list": dict(method=post, url="/v1/decisions", content=b"[]", headers={**own, **JSON}),
        "duplicate key": dict(method=post, url="/v1/decisions",
                              content=b'{"app_id": "claims-summariser", "app_id": "internal-helpdesk"}',
                              headers={**own, **JSON}),
        "unknown field": dict(method=post, url="/v1/decisions",
                              content=body(workload={**DECISION_REQUEST_EXAMPLE["workload"], "colour": "blue"}),
                              headers={**own, **JSON}),
        "bad enum": dict(method=post, url="/v1/decisions",
                         content=body(workload={**DECISION_REQUEST_EXAMPLE["workload"], "task": "poetry"}),
                         headers={**own, **JSON}),
        "missing field": dict(method=post, url="/v1/decisions", content=b'{"app_id": "claims-summariser"}',
                              headers={**own, **JSON}),
        "nul character": dict(method=post, url="/v1/decisions", content=body(context={"request_id": "a\u0000b"}),
                              headers={**own, **JSON}),
        "unknown app": dict(method=post, url="/v1/decisions", content=body(app_id="no-such-app"),
                            headers={**bearer(more["gone"]), **JSON}),
        "admin key": dict(method=post, url="/v1/decisions", content=body(), headers={**bearer(keys.admin), **JSON}),
        "outside profile": dict(method=post, url="/v1/decisions",
                                content=json.dumps({"app_id": "citizen-services",  # a public_sector app
                                                    "workload": {**general, "sector": "general"}}).encode(),
                                headers={**bearer(more["citizen"]), **JSON}),
        "trailing slash": dict(method=post, url="/v1/decisions/", content=body(), headers={**own, **JSON}),
        "GET": dict(method="GET", url="/v1/decisions", headers=own),
        "HEAD": dict(method="HEAD", url="/v1/decisions", headers=own),
        "OPTIONS": dict(method="OPTIONS", url="/v1/decisions", headers=own),
        "PUT": dict(method="PUT", url="/v1/decisions", content=body(), headers={**own, **JSON}),
        "case of the path": dict(method=post, url="/v1/Decisions", content=body(), headers={**own, **JSON}),
    }


NAMES = list(requests(Keys("", "", "", "", ""), {"gateway": "", "citizen": "", "gone": ""}, 1024))


def answer(response: Any) -> tuple[int, dict[str, str | None], Any]:
    headers = {name: response.headers.get(name) for name in HEADERS}
    if response.status_code != 200:
        return response.status_code, headers, response.content
    decision = response.json()  # its id, its audit receipt and the length of its bytes differ; the rest agrees
    assert headers.pop("content-length") == str(len(response.content))
    decision.pop("decision_id")
    decision.pop("audit")  # the entry's sequence number and hashes
    return response.status_code, headers, decision


@pytest.mark.parametrize("name", NAMES)
def test_the_fast_path_answers_as_the_route(both: dict[str, TestClient], keys: Keys, more_keys: dict[str, str],
                                            services: Services, name: str) -> None:
    request = requests(keys, more_keys, services.settings.max_body_bytes)[name]
    before = verify_whole(services.store).checked
    on = both["on"].request(**request, follow_redirects=False)
    off = both["off"].request(**request, follow_redirects=False)
    assert answer(on) == answer(off), (on.text, off.text)
    if on.status_code != 200:
        assert on.status_code == 307 or not on.content or on.json()["error"]["code"]
        assert verify_whole(services.store).checked == before  # refused: nothing recorded
    else:
        assert verify_whole(services.store).checked == before + 2  # each answer has its entry


def test_errors_cover_the_documented_classes(both: dict[str, TestClient], keys: Keys, more_keys: dict[str, str],
                                             services: Services) -> None:
    """The table above meets every error the endpoint documents (not a vacuous comparison)."""
    seen = {}
    for name, request in requests(keys, more_keys, services.settings.max_body_bytes).items():
        response = both["on"].request(**request, follow_redirects=False)
        code = response.json()["error"]["code"] if response.status_code >= 400 and response.content else "-"
        seen[name] = (response.status_code, code)
    assert seen["app key"] == seen["gateway key"] == seen["query string"] == (200, "-")
    assert seen["no key"] == seen["malformed key"] == seen["unknown key"] == (401, "unauthorized")
    assert seen["auditor key"] == seen["admin key"] == seen["other app"] == seen["gateway other app"] == (403, "forbidden")
    assert seen["too large declared"] == seen["too large declared, no key"] == (413, "body_too_large")
    assert seen["malformed json"] == (400, "malformed_json")
    assert seen["duplicate key"] == (400, "duplicate_key")
    assert seen["unknown field"] == seen["bad enum"] == seen["empty body"] == seen["text body"] == (
        422, "invalid_request")
    assert seen["unknown app"] == (422, "unknown_app")
    assert seen["outside profile"] == (422, "outside_profile")
    assert seen["trailing slash"][0] == 307
    assert seen["GET"] == seen["PUT"] == (405, "method_not_allowed")


# -- streamed bodies and disconnects, driven through ASGI itself ------------------------------


def asgi(client: TestClient, chunks: list[bytes], headers: list[tuple[bytes, bytes]], *,
         disconnect: bool = False, root_path: str = "", path: str = "/v1/decisions") -> list[dict[str, Any]]:
    """Send one POST in ``chunks`` (no Content-Length, as a chunked body arrives) on the
    client's event loop; the messages the app sent (its exception, if it raised one, last)."""
    app = client.app
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": root_path + path, "raw_path": (root_path + path).encode(),
             "root_path": root_path, "query_string": b"", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "state": {}}
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i + 1 < len(chunks) or disconnect}
        for i, chunk in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:  # Starlette re-raises to the server after its 500
            sent.append({"raised": type(exc).__name__})

    client.portal.call(run)
    return sent


def summary(sent: list[dict[str, Any]]) -> tuple[Any, ...]:
    start = next(m for m in sent if m.get("type") == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m.get("type") == "http.response.body")
    if start["status"] == 200:
        content = b"(a decision)" if b'"decision_id"' in content else content
    return start["status"], sorted((k, v) for k, v in start["headers"] if k != b"content-length"
                                   or start["status"] != 200), content


@pytest.mark.parametrize("case", ["chunked", "too large streamed", "too large streamed, no key",
                                  "too large after a whole object", "disconnect mid-body", "root_path"])
def test_streamed_bodies_and_disconnects(both: dict[str, TestClient], keys: Keys, services: Services,
                                         case: str) -> None:
    limit = services.settings.max_body_bytes
    headers = [(b"authorization", f"Bearer {keys.own_app}".encode()), (b"content-type", b"application/json")]
    raw = body()
    chunks, kwargs = [raw[:10], raw[10:50], raw[50:]], {}
    if case == "too large after a whole object":  # what was read by the limit parses: decide nothing
        chunks = [raw] + [b" " * 8192] * (limit // 8192 + 2)
    elif case.startswith("too large"):
        chunks = [raw[:-1]] + [b" " * 8192] * (limit // 8192 + 2) + [b"}"]  # valid JSON once whole
        headers = headers[1:] if case.endswith("no key") else headers
    elif case == "disconnect mid-body":
        chunks = [raw[:20]]
        kwargs = {"disconnect": True}
    elif case == "root_path":
        kwargs = {"root_path": "/clearance"}
    before = verify_whole(services.store).checked
    on, off = (asgi(both[side], chunks, headers, **kwargs) for side in ("on", "off"))  # type: ignore[arg-type]
    assert summary(on) == summary(off), (on, off)
    status = summary(on)[0]
    expected = {"chunked": 200, "too large streamed": 413, "too large streamed, no key": 401,
                "too large after a whole object": 413, "disconnect mid-body": 500, "root_path": 200}[case]
    assert status == expected
    if case == "disconnect mid-body":
        assert off[-1] == {"raised": "ClientDisconnect"}  # the route re-raises it to the server
        assert "raised" not in on[-1]  # the fast path has answered; the server has nothing to log twice
    if case == "too large streamed":
        # Both stop reading at the limit (BodyTooLarge raised to the reader) and decide nothing.
        assert json.loads(summary(on)[2])["error"]["code"] == "body_too_large"
    if status != 200:
        assert verify_whole(services.store).checked == before


def test_a_recording_endpoint_records_nothing_from_a_body_cut_at_the_limit(
        both: dict[str, TestClient], keys: Keys, services: Services) -> None:
    """BodyLimit raises to the reader at the limit: a served-route report (recorded in the log)
    whose first bytes are a whole object, then spaces past the limit, is refused, not recorded."""
    limit = services.settings.max_body_bytes
    decided = both["off"].post("/v1/decisions", content=body(), headers=bearer(keys.own_app)).json()
    route = decided["allowed"][0]
    report = json.dumps({"model": route["model"], "deployment": route["deployment"]}).encode()
    headers = [(b"authorization", f"Bearer {keys.own_app}".encode()), (b"content-type", b"application/json")]
    before = verify_whole(services.store).checked
    sent = asgi(both["off"], [report] + [b" " * 8192] * (limit // 8192 + 2), headers,
                path=f"/v1/decisions/{decided['decision_id']}/served")
    status, _, content = summary(sent)
    assert status == 413 and json.loads(content)["error"]["code"] == "body_too_large"
    assert verify_whole(services.store).checked == before


# -- the audit store down: 503 with Retry-After from both ---------------------------------------


@pytest.fixture
def proxied(api_database: str, api_home: Path) -> Iterator[tuple[dict[str, TestClient], Keys, TcpProxy]]:
    proxy, via_proxy = proxy_to(api_database)
    # Keys cached a minute: a key checked before the cut is known after it (the audit store's 503).
    # The module's home: its signing key signed the log so far.
    settings = make_settings(api_home, via_proxy).model_copy(update={"apikey_cache_seconds": 60})
    services = Services.start(settings)
    keys = make_keys(services)
    try:
        with (TestClient(create_app(services=services), raise_server_exceptions=False) as on,
              TestClient(create_app(services=services, fast_decisions=False), raise_server_exceptions=False) as off):
            yield {"on": on, "off": off}, keys, proxy
    finally:
        proxy.stop()
        services.close()


def test_the_audit_store_down_is_the_same_503(proxied: tuple[dict[str, TestClient], Keys, TcpProxy]) -> None:
    clients, keys, proxy = proxied
    request = dict(method="POST", url="/v1/decisions", content=body(), headers={**bearer(keys.own_app), **JSON})
    for side in ("on", "off"):  # the key checked, and cached, while the database is up
        assert clients[side].request(**request).status_code == 200
    proxy.stop()
    unknown_key = {**request, "headers": {**bearer(keys.other_app), **JSON}}  # not cached: cannot be checked
    for sent, code in ((request, "audit_unavailable"), (unknown_key, "database_unavailable")):
        answers = {side: clients[side].request(**sent) for side in ("on", "off")}
        assert answer(answers["on"]) == answer(answers["off"])
        assert answers["on"].status_code == 503
        assert answers["on"].json()["error"]["code"] == code
        assert answers["on"].headers["retry-after"] == "1"
