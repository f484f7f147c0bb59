"""A real HTTP server on 127.0.0.1 that answers like OPA's documented REST API, from fixtures.

Not OPA and not a mock object: a ``ThreadingHTTPServer`` that records every request it gets
(method, path, query, headers, body) and answers each with the reply registered for its
method and path. The replies come from ``fixtures/*.json``: request/response pairs taken from
OPA's REST API documentation, each labelled with the section it comes from. Used by the
adapter tests (what ``OpaEngine`` sends, how it reads the answers) and by
bench/engines_bench.py (which then measures HTTP + adapter overhead, not OPA's evaluation).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    """A recorded request/response pair (see fixtures/README.md)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None  # a JSON value; None: no body (204)
    raw: bytes | None = None  # sent as is instead of ``body`` (e.g. not JSON)
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    content_type: str = "application/json"

    @classmethod
    def of(cls, name: str, **changes: Any) -> Reply:
        """The documented response of fixture ``name`` (``changes`` override fields)."""
        response = fixture(name)["response"]
        return cls(**{"status": response["status"], "body": response["body"], **changes})


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    replies: list[Reply]
    served: int = 0

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]  # the last one repeats
        self.served += 1
        return reply


@dataclass
class ReplayServer:
    """Routes are matched newest first; an unrouted request gets 404 in OPA's error shape."""

    routes: list[_Route] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def route(self, method: str, path_pattern: str, *replies: Reply) -> None:
        """Answer ``method`` on paths fully matching ``path_pattern`` with ``replies`` in turn."""
        with self._lock:
            self.routes.insert(0, _Route(method, re.compile(path_pattern), list(replies)))

    def reply_for(self, method: str, path: str) -> Reply:
        with self._lock:
            for route in self.routes:
                if route.method == method and route.pattern.fullmatch(path):
                    return route.next_reply()
        return Reply(404, {"code": "resource_not_found", "message": f"replay server: no fixture for {method} {path}"})

    def record(self, item: Recorded) -> None:
        with self._lock:
            self.requests.append(item)

    def seen(self, method: str | None = None, path_prefix: str = "") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(path_prefix)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


def _handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as OPA's Go server
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server.record(Recorded(self.command, parts.path, parse_qs(parts.query),
                                   {k.lower(): v for k, v in self.headers.items()}, body))
            reply = server.reply_for(self.command, parts.path)
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.raw if reply.raw is not None else (
                b"" if reply.body is None else json.dumps(reply.body).encode())
            try:
                self.send_response(reply.status)
                if payload:
                    self.send_header("Content-Type", reply.content_type)
                if reply.status != 204:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload:
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def replay_server() -> Iterator[ReplayServer]:
    """A started server on a free port of 127.0.0.1; stopped on exit."""
    state = ReplayServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="opa-replay", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def install_routes(server: ReplayServer) -> None:
    """What installing a bundle needs, answered with the documented success responses:
    GET /v1/policies (the documented list: no Clearance ids), PUT/DELETE of policies and data."""
    server.route("GET", "/v1/policies/?", Reply.of("policies_list"))
    server.route("PUT", "/v1/policies/.+", Reply.of("policy_put"))
    server.route("DELETE", "/v1/policies/.+", Reply.of("policy_delete"))
    server.route("PUT", "/v1/data/.+", Reply.of("data_put"))
    server.route("DELETE", "/v1/data/.+", Reply.of("data_delete"))
