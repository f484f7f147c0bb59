"""Fuzzing every operation of the OpenAPI document with schemathesis: no 5xx, no unhandled
exception, and every 4xx in the one error shape. Then the parts of a request schemathesis does
not reach, on every endpoint of the app (the pages and static files too): odd query values
(numbers huge, negative, NaN; empty, NUL, invalid UTF-8, very long), repeated and undeclared
parameters, forged but well-formed cursors, odd headers and Authorization values, odd path
values, and Hypothesis-generated query strings and cursors. Plus, against a real uvicorn server:
oversized bodies get 413 (declared or chunked), deeply nested JSON is refused cleanly, a forged
cursor leaves the keep-alive connection usable.

Operations come from the app's own ``/openapi.json``, so endpoints added later are fuzzed
without touching this file. Each (operation, mode) runs ``EXAMPLES`` Hypothesis examples in
positive (schema-valid) and negative (schema-violating) mode, with the key of the role the
endpoint wants (tests/reliability/endpoints.py) — or now and then none, a bad one or the wrong
role. The default run is derandomised (the same cases in CI every time); ``CLEARANCE_LONG=1``
runs ten times as many, randomised.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from api.apikeys import Role, create_key
from api.app import create_app
from api.schemas import DECISION_REQUEST_EXAMPLE
from api.settings import Settings
from audit import upgrade
from tests.api.conftest import bearer
from tests.conftest import create_database, drop_database

from .conftest import LONG, make_api_key, running_services
from .endpoints import BY_ROUTE, Access, current_tile, documented_route
from .figures import Figures
from .server import ServerProcess

EXAMPLES = 1000 if LONG else 100
MIN_CASES = 1000  # what the default run must reach, over all operations

_DOCUMENT = create_app(Settings(database_url="postgresql://unused/none")).openapi()
# (method, path, takes input): an operation without parameters or body is only called by each
# kind of caller (a reload, for one, rebuilds the whole bundle: no point in calling it 100 times).
OPERATIONS = sorted(
    (method.upper(), path, bool(op.get("parameters") or op.get("requestBody")))
    for path, item in _DOCUMENT["paths"].items()
    for method, op in item.items()
    if method in ("get", "post", "put", "patch", "delete")
)
RUNS = [(m, p, mode) for m, p, has_input in OPERATIONS
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if has_input or mode is GenerationMode.POSITIVE]
APPS = ["claims-summariser", "internal-helpdesk"]


@dataclass(frozen=True)
class Fuzzing:
    schema: Any
    keys: dict[str, str]  # role or caller kind -> Authorization header value
    client: TestClient
    decision_id: str  # a recorded decision, for GET /v1/decisions/{decision_id}


@pytest.fixture(scope="module")
def fuzzing(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzing]:
    with running_services(pg_server_url, tmp_path_factory.mktemp("fuzz"), "fuzz") as services:
        db = services.db
        keys = {
            "app": create_key(db, role=Role.app, app_id="claims-summariser")[0],
            "auditor": create_key(db, role=Role.auditor, app_id=None)[0],
            "admin": create_key(db, role=Role.admin, app_id=None)[0],
            "gateway": create_key(db, role=Role.gateway, app_id=None, apps=APPS, gateway="litellm-main")[0],
        }
        app = create_app(services=services)
        with TestClient(app, raise_server_exceptions=True) as client:  # runs the lifespan once
            # a few recorded decisions, so audit queries and lookups have something to find
            for _ in range(3):
                made = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE, headers=bearer(keys["app"]))
                assert made.status_code == 200
            yield Fuzzing(schemathesis.openapi.from_asgi("/openapi.json", app), keys, client,
                          made.json()["decision_id"])


def _authorization(endpoint_access: Access | None, caller: str, keys: dict[str, str]) -> str | None:
    if caller == "none":
        return None
    if caller == "garbage":
        return "Bearer clr_not_a_key"
    if caller == "wrong_role":
        return f"Bearer {keys['admin' if endpoint_access is not Access.admin else 'auditor']}"
    role = {Access.app: "app", Access.auditor: "auditor", Access.admin: "admin", Access.caller_app: "app",
            Access.reporter: "app", Access.gateway: "gateway", Access.gateway_in_body: "gateway"}.get(
        endpoint_access or Access.public, "auditor")
    return f"Bearer {keys[role]}"


def _check_error_shape(response: Any) -> None:
    if not 400 <= response.status_code < 500:
        return
    if "application/json" not in response.headers.get("content-type", ""):
        return
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], list)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), RUNS, ids=[f"{m} {p} {mode.value}" for m, p, mode in RUNS])
def test_fuzz_operation(fuzzing: Fuzzing, method: str, path: str, mode: GenerationMode, figures: Figures,
                        caplog: pytest.LogCaptureFixture) -> None:
    operation = fuzzing.schema[path][method]
    endpoint = BY_ROUTE.get(documented_route(method, path))
    access = endpoint.access if endpoint else None
    takes_input = next(has_input for m, p, has_input in OPERATIONS if (m, p) == (method, path))
    ran = 0

    @settings(max_examples=EXAMPLES if takes_input else 4, deadline=None, database=None, derandomize=not LONG,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=operation.as_strategy(generation_mode=mode),
           caller=st.sampled_from(["role"] * 6 + ["none", "garbage", "wrong_role"] if takes_input
                                  else ["role", "none", "garbage", "wrong_role"]),
           app_id=st.sampled_from([None, *APPS]) if takes_input else st.none())
    def run(case: Any, caller: str, app_id: str | None) -> None:
        nonlocal ran
        authorization = _authorization(access, caller, fuzzing.keys)
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        if authorization:
            case.headers["Authorization"] = authorization
        if app_id and isinstance(case.body, dict) and "app_id" in case.body:
            # A known app (the app key's own, for decisions) gets past the entitlement lookup,
            # so the generated workload reaches the policy engine and the audit writer.
            case.body["app_id"] = "claims-summariser" if access is Access.app else app_id
        response = case.call()
        ran += 1
        kind = f"{response.status_code // 100}xx"
        figures.fuzz_statuses[kind] = figures.fuzz_statuses.get(kind, 0) + 1
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
        _check_error_shape(response)

    with caplog.at_level(logging.ERROR):
        run()
    figures.fuzz_cases += ran
    figures.fuzz_operations.add(f"{method} {path}")
    unhandled = [r for r in caplog.records if "unhandled" in r.getMessage()]
    assert not unhandled, unhandled[0].getMessage()


@pytest.mark.slow
def test_fuzzing_reached_its_budget(figures: Figures) -> None:
    """At least MIN_CASES generated cases over every operation (run after the fuzz tests)."""
    if not figures.fuzz_operations:
        pytest.skip("the fuzz tests were not selected in this run")
    assert figures.fuzz_operations == {f"{m} {p}" for m, p, _ in OPERATIONS}
    assert figures.fuzz_cases >= MIN_CASES, f"only {figures.fuzz_cases} fuzz cases ran"


def test_the_fuzzed_document_covers_the_table() -> None:
    """Every endpoint in the schema has a row in the authorization table (so a known role)."""
    documented = {documented_route(m, p) for m, p, _ in OPERATIONS}
    assert documented <= set(BY_ROUTE), sorted(documented - set(BY_ROUTE))


# -- query strings, cursors, headers and path values of every endpoint -------------------------

# Every endpoint of the app, with the concrete path to call and the role it wants (the routes
# outside the OpenAPI document too: /ui, /docs and their static files).
PROBED = [(e.method, e.path, e.sample or e.path, e.access) for e in BY_ROUTE.values()]
QUERY_PARAMETERS = {
    documented_route(method.upper(), path): [p["name"] for p in op.get("parameters", ()) if p["in"] == "query"]
    for path, item in _DOCUMENT["paths"].items() for method, op in item.items() if isinstance(op, dict)
}
# Odd values for any query parameter: numbers out of range or not numbers, empty, NUL, control
# characters, invalid UTF-8, very long, injection-looking, dates outside the calendar.
ODD_VALUES = [
    "", " ", "NaN", "nan", "Infinity", "-Infinity", "-1", "0", "-0", "1e400", "-1e400", "1e-400", "9" * 400,
    "-9223372036854775809", "9223372036854775808", "4611686018427387905", "0x1F", "1_000", "\u0661\u0662",
    "true", "null", "[]", "{}", "\x00", "a\nb", "\u202e", "\u00e9" * 50, "x" * 8000,
    "'; DROP TABLE audit_entries;--", "../../etc/passwd", "2026-13-45T99:99:99Z",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00+99:99",
]
RAW_VALUES = ["%ED%A0%80", "%FF%FE", "%", "%zz", "%00%00", "a%2Cb%2C%2C"]  # sent as is, not encoded again


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED_CURSORS = [
    _b64(b"[5,123]"), base64.b64encode(b"[5,123]").decode(), _b64(b"[5,null]"), _b64(b'[5,"x"]'),
    _b64(b'[5,"9999-12-31T23:59:59-14:00"]'), _b64(b'[5,"0001-01-01T00:00:00+14:00"]'),
    _b64(b'[1e400,"2026-01-01T00:00:00Z"]'), _b64(b'[NaN,"2026-01-01T00:00:00Z"]'),
    _b64(b'[-1,"2026-01-01T00:00:00Z"]'), _b64(b'[99999999999999999999999,"2026-01-01T00:00:00Z"]'),
    _b64(b"[]"), _b64(b"{}"), _b64(b'"[5,1]"'), _b64(b"\xff" * 20), _b64(b"[" * 5000), "=" * 10, "!!", "",
]
AUTHORIZATIONS = [
    "", "Bearer", "Bearer ", "Bearer  ", "bearer {key}", "BEARER {key}", "Bearer {key} extra", "Bearer\t{key}",
    "Bearer {key}x", "Bearer x{key}", "Basic {key}", "Token {key}", "{key}", "Bearer " + "a" * 8000,
    "Bearer clr_0000000000000000_" + "A" * 43, "Bearer clr_" + "f" * 16 + "_" + "-" * 43,
    "Bearer clr_../../_" + "A" * 43, "Bearer \u00e9\u00e9", "Bearer {key}\u00a0",
]


@dataclass
class Probe:
    fuzzing: Fuzzing
    figures: Figures
    sent: int = 0

    def send(self, method: str, url: str, access: Access, *, authorization: str | None = None,
             headers: list[tuple[str, str]] | None = None) -> httpx.Response:
        role = {Access.app: "app", Access.admin: "admin", Access.caller_app: "app", Access.reporter: "app",
                Access.gateway: "gateway", Access.gateway_in_body: "gateway"}.get(access, "auditor")
        pairs = list(headers or [])
        if authorization is None:
            pairs.append(("Authorization", f"Bearer {self.fuzzing.keys[role]}"))
        elif authorization:
            pairs.append(("Authorization", authorization.replace("{key}", self.fuzzing.keys[role])))
        body = json.dumps(DECISION_REQUEST_EXAMPLE).encode() if method == "POST" else None
        response = self.fuzzing.client.request(method, url, headers=[(k.encode("latin-1"), v.encode("latin-1", "replace"))
                                                                     for k, v in pairs], content=body)
        self.sent += 1
        kind = f"{response.status_code // 100}xx"
        self.figures.probe_statuses[kind] = self.figures.probe_statuses.get(kind, 0) + 1
        assert response.status_code < 500, f"{method} {url[:200]}: {response.status_code} {response.text[:300]}"
        _check_error_shape(response)
        return response


def _concrete(sample: str, fuzzing: Fuzzing) -> str:
    tile = current_tile(fuzzing.client, bearer(fuzzing.keys["auditor"])) if "{tile}" in sample else ""
    return sample.format(decision_id=fuzzing.decision_id, tile=tile).split("?", 1)[0]


def _ids(items: list[tuple[str, str, str, Access]]) -> list[str]:
    return [f"{m} {p}" for m, p, _, _ in items]


# A reload rebuilds the whole bundle: it gets only the header cases, which are refused early.
@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "sample", "access"), PROBED, ids=_ids(PROBED))
def test_odd_query_strings_cursors_and_headers(fuzzing: Fuzzing, figures: Figures, method: str, path: str,
                                               sample: str, access: Access, caplog: pytest.LogCaptureFixture) -> None:
    probe = Probe(fuzzing, figures)
    base = _concrete(sample, fuzzing)
    reload = path == "/v1/policy/reload"
    with caplog.at_level(logging.ERROR):
        if not reload:
            names = [*QUERY_PARAMETERS.get((method, path), []), "undeclared"]
            for name in names:
                for value in ODD_VALUES:
                    probe.send(method, f"{base}?{urlencode({name: value})}", access)
                for raw in RAW_VALUES:
                    probe.send(method, f"{base}?{name}={raw}", access)
                probe.send(method, f"{base}?{name}=1&{name}=2", access)  # repeated
                probe.send(method, f"{base}?{name}", access)  # a name without "="
            if "cursor" in names:
                for cursor in FORGED_CURSORS:
                    answer = probe.send(method, f"{base}?{urlencode({'cursor': cursor})}", access)
                    assert answer.status_code in (401, 403, 422), answer.text
                    if answer.status_code == 422:
                        assert [f["field"] for f in answer.json()["error"]["fields"]] == ["cursor"]
            for header in ("Content-Type", "Accept", "Accept-Encoding", "X-Forwarded-For", "Cookie", "Range"):
                for value in ("", "x" * 4000, "application/json; charset=utf-32", "*/*;q=NaN", "\u00ff\u00fe",
                              "bytes=0-1,-1", "a=b; a=c"):
                    probe.send(method, base, access, headers=[(header, value)])
        for authorization in AUTHORIZATIONS:
            probe.send(method, base, access, authorization=authorization)
        if not reload:
            # Two Authorization headers: a valid key and a bad one, in both orders.
            probe.send(method, base, access, authorization="", headers=[
                ("Authorization", f"Bearer {fuzzing.keys['auditor']}"), ("Authorization", "Bearer clr_bad")])
            probe.send(method, base, access, authorization="", headers=[
                ("Authorization", "Bearer clr_bad"), ("Authorization", f"Bearer {fuzzing.keys['auditor']}")])
    figures.probe_cases += probe.sent
    unhandled = [r for r in caplog.records if "unhandled" in r.getMessage()]
    assert not unhandled, unhandled[0].getMessage()


PATH_VALUES = ["..", "%2e%2e", "..%2F..%2Fapi%2Fsettings.py", "%00", "x" * 4000, "\u00e9", "app.js%00.png",
               "swagger-ui.js.map", "..%5C..%5Capp.py", "%ED%A0%80", "0190f3a0-0000-7000-8000-00000000000", "-1"]


@pytest.mark.slow
def test_odd_path_values(fuzzing: Fuzzing, figures: Figures) -> None:
    probe = Probe(fuzzing, figures)
    for method, path, _, access in PROBED:
        if "{" not in path:
            continue
        for value in PATH_VALUES:
            url = re.sub(r"\{[^}]+\}", value, path)
            answer = probe.send(method, url, access)
            resolved = str(answer.url).removeprefix("http://testserver") != url
            # (a dot segment may be resolved by the client first: then another route answers)
            # (a gateway's native contract answers every refusal with 200 and its verdict in the body)
            refused = (answer.status_code in (401, 403, 404, 422)
                       or (access is Access.gateway_in_body and answer.status_code == 200
                           and answer.json().get("action", answer.json().get("verdict")) in ("BLOCKED", False)))
            assert resolved or refused, f"{url}: {answer.status_code}"
    figures.probe_cases += probe.sent


@pytest.mark.slow
@settings(max_examples=300 if LONG else 60, deadline=None, database=None, derandomize=not LONG,
          suppress_health_check=list(HealthCheck))
@given(pairs=st.lists(st.tuples(
    st.sampled_from(sorted({n for names in QUERY_PARAMETERS.values() for n in names})) | st.text(max_size=8),
    st.one_of(st.sampled_from(ODD_VALUES), st.text(max_size=40), st.integers().map(str),
              st.floats(allow_nan=True, allow_infinity=True).map(repr))), max_size=6),
       operation=st.sampled_from([(m, p, s, a) for m, p, s, a in PROBED if QUERY_PARAMETERS.get((m, p))]))
def test_generated_query_strings(fuzzing: Fuzzing, figures: Figures, pairs: list[tuple[str, str]],
                                 operation: tuple[str, str, str, Access]) -> None:
    """Hypothesis-generated query strings (declared and undeclared names, any text, numbers
    of any size, NaN and infinities) on the endpoints that take query parameters."""
    method, path, sample, access = operation
    probe = Probe(fuzzing, figures)
    probe.send(method, f"{_concrete(sample, fuzzing)}?{urlencode(pairs)}", access)
    figures.probe_cases += probe.sent


@pytest.mark.slow
@settings(max_examples=200 if LONG else 40, deadline=None, database=None, derandomize=not LONG,
          suppress_health_check=list(HealthCheck))
@given(token=st.one_of(
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=6).map(lambda v: _b64(json.dumps(v).encode())),
    st.tuples(st.integers(), st.text(max_size=40)).map(lambda v: _b64(json.dumps(list(v)).encode())),
    st.binary(max_size=60).map(_b64),
    st.text(max_size=60)))
def test_generated_cursors(fuzzing: Fuzzing, figures: Figures, token: str) -> None:
    """Well-formed and malformed cursors alike: a page (a well-formed position) or 422 naming
    ``cursor``."""
    probe = Probe(fuzzing, figures)
    answer = probe.send("GET", f"/v1/audit/decisions?{urlencode({'cursor': token})}", Access.auditor)
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        assert "cursor" in {f["field"] for f in answer.json()["error"]["fields"]}, answer.text
    figures.probe_cases += probe.sent


# -- a real server: body limits and nesting ----------------------------------------------------


LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def real_server(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    from audit import init_key

    from .server import server_env

    name = f"clearance_fuzz_srv_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    home = tmp_path_factory.mktemp("fuzz-server")
    init_key(home / "signing.key")
    server = ServerProcess(env=server_env(database_url=url, home=home, signing_key=str(home / "signing.key"),
                                          CLEARANCE_MAX_BODY_BYTES=str(LIMIT)),
                           log_path=home / "server.log")
    try:
        upgrade(url)
        headers = {
            "/v1/decisions": f"Bearer {make_api_key(url, Role.app, 'claims-summariser')}",
            "/v1/policy/simulate": f"Bearer {make_api_key(url, Role.admin)}",
            "/v1/audit/decisions": f"Bearer {make_api_key(url, Role.auditor)}",
        }
        yield server.start(), headers
    finally:
        server.kill()
        drop_database(pg_server_url, name)


def _post(server: ServerProcess, path: str, authorization: str, content: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=content, timeout=30,
                      headers={"Authorization": authorization, "Content-Type": "application/json"})


def _padded(size: int) -> bytes:
    body = copy.deepcopy(DECISION_REQUEST_EXAMPLE)
    body["context"]["request_id"] = ""
    base = len(json.dumps(body).encode())
    body["context"]["request_id"] = "x" * (size - base)
    return json.dumps(body).encode()


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/policy/simulate"])
def test_oversized_bodies_get_413(real_server: tuple[ServerProcess, dict[str, str]], path: str) -> None:
    server, headers = real_server
    for size in (LIMIT + 1, 4 * LIMIT, 64 * LIMIT):
        response = _post(server, path, headers[path], _padded(size))
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "body_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it streams
        yield from (b" " * 8192 for _ in range(LIMIT // 8192 + 4))

    response = _post(server, path, headers[path], chunked())
    assert response.status_code == 413, response.text
    # At the limit exactly it is no longer the size that is refused.
    assert _post(server, path, headers[path], _padded(LIMIT)).status_code in (200, 422)


def _nested(kind: str, depth: int) -> bytes:
    body = json.dumps({**DECISION_REQUEST_EXAMPLE, "context": "@"})
    inner = {"array": "[" * depth + "]" * depth,
             "object": '{"a":' * depth + "1" + "}" * depth,
             "mixed": '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)}[kind]
    return body.replace('"@"', inner).encode()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/policy/simulate"])
def test_deeply_nested_json_is_refused_cleanly(real_server: tuple[ServerProcess, dict[str, str]], path: str,
                                               kind: str) -> None:
    server, headers = real_server
    for depth in (100, 1_000, 10_000):
        raw = _nested(kind, depth)
        assert len(raw) <= LIMIT
        response = _post(server, path, headers[path], raw)
        assert 400 <= response.status_code < 500, f"depth {depth}: {response.status_code} {response.text[:300]}"
        assert response.json()["error"]["code"] in ("malformed_json", "invalid_request")
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200  # still serving
    assert "Traceback" not in server.log_text()


@pytest.mark.slow
@pytest.mark.parametrize("raw", [
    b'{"app_id": "claims-summariser", "workload": {"monthly_active_users": 1' + b"0" * 5000 + b"}}",
    json.dumps({**DECISION_REQUEST_EXAMPLE, "context": {"request_id": "a\u0000b"}}).encode(),
    json.dumps({**DECISION_REQUEST_EXAMPLE, "context": {"request_id": "\ud800"}}, ensure_ascii=True).encode(),
    b'{"app_id": "claims-summariser", "app_id": "internal-helpdesk"}',
    b"\xef\xbb\xbf" + json.dumps(DECISION_REQUEST_EXAMPLE).encode(),
    json.dumps(DECISION_REQUEST_EXAMPLE).encode().replace(b"5.0", b"1e999"),
], ids=["5000-digit-int", "nul-char", "lone-surrogate", "duplicate-keys", "utf8-bom", "float-overflow"])
def test_awkward_json_is_a_4xx(real_server: tuple[ServerProcess, dict[str, str]], raw: bytes) -> None:
    server, headers = real_server
    response = _post(server, "/v1/decisions", headers["/v1/decisions"], raw)
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.text
    if response.status_code != 200:
        _check_error_shape(response)
        assert "decision_id" not in response.text


@pytest.mark.slow
def test_a_forged_cursor_leaves_the_keep_alive_connection_usable(real_server: tuple[ServerProcess, dict[str, str]]) -> None:
    """A forged cursor once answered 500 and the next request on that keep-alive connection was
    reset: now 422, and the same connection serves the next request."""
    server, headers = real_server
    auditor = {"Authorization": headers["/v1/audit/decisions"]}
    with httpx.Client(base_url=server.url, timeout=30, headers=auditor) as client:
        for cursor in FORGED_CURSORS[:8]:
            forged = client.get("/v1/audit/decisions", params={"cursor": cursor})
            assert forged.status_code == 422, forged.text
            after = client.get("/v1/audit/decisions", params={"limit": 1})
            assert after.status_code == 200, after.text
            assert after.extensions["network_stream"] is forged.extensions["network_stream"]  # one connection
    assert "Traceback" not in server.log_text()
