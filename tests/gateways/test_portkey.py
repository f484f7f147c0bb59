"""Clearance in front of the real Portkey gateway (@portkey-ai/gateway under Node.js).

Portkey listens on every interface and has no option to bind loopback only, so it runs in a
private network namespace (``unshare -n``) whose one interface is its own loopback; Clearance
and the mock model backend stay on this namespace's loopback and are reached through Unix
sockets (tests/gateways/relay.py). The gateway's config is the one shipped in
docs/gateways/portkey-config.json, with the fail-closed options (``deny: true``,
``failOnError: true``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO
from tests.reliability.cluster import free_port

from . import relay
from .conftest import Clearance, Process, wait_until_up

PORTKEY = REPO / "tests" / "gateways" / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
PORTKEY_PORT = 8787
CONFIG = REPO / "docs" / "gateways" / "portkey-config.json"


def _namespaces_work() -> str | None:
    """Why a private network namespace cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) is missing"
    done = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"unshare -n failed: {done.stderr.strip()[:200]}"


@dataclass
class Backend:
    """A mock OpenAI-compatible model backend that answers with the model it was asked for."""

    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)


def _backend() -> tuple[Backend, ThreadingHTTPServer]:
    backend = Backend(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            backend.seen.append({"path": self.path, **body})
            model = body.get("model")
            answer = json.dumps({"id": "mock-1", "object": "chat.completion", "created": 0, "model": model,
                                 "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                     "role": "assistant", "content": f"served by {model}"}}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", backend.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return backend, server


@dataclass
class Portkey:
    socket: str
    backend: Backend
    clearance: Clearance
    dead_port: int  # a port in the namespace where nothing answers

    def call(self, model: str, *, path: str = "/v1/chat/completions", config: dict[str, Any] | None = None,
             metadata: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"model": model}
        if path.endswith("/responses"):
            body["input"] = "hello"
        else:
            body["messages"] = [{"role": "user", "content": "hello"}]
        headers = {"x-portkey-config": json.dumps(config or self.config()),
                   "x-portkey-metadata": json.dumps(metadata if metadata is not None else {"team": "it-service-desk"})}
        with httpx.Client(transport=httpx.HTTPTransport(uds=self.socket), timeout=30) as client:
            return client.post(f"http://portkey{path}", json=body, headers=headers)

    def config(self, *, webhook_query: str = "", clearance_port: int | None = None,
               fail_on_error: bool = True) -> dict[str, Any]:
        text = CONFIG.read_text()
        port = clearance_port if clearance_port is not None else self.clearance.server.port
        text = (text.replace("{provider_api_key}", "not-a-real-key")
                .replace("{provider_url}", f"http://127.0.0.1:{self.backend.port}/v1")
                .replace("{clearance_url}", f"http://127.0.0.1:{port}")
                .replace("{gateway_key}", self.clearance.gateway_keys["portkey-main"]))
        config = json.loads(text)
        check = config["before_request_hooks"][0]["checks"][0]["parameters"]
        check["webhookURL"] += webhook_query
        check["failOnError"] = fail_on_error
        return config  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def portkey(clearance: Clearance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portkey]:
    if not PORTKEY.exists():
        pytest.skip("the Portkey gateway is not installed (scripts/install-gateways.sh needs node and npm)")
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Portkey gateway runs under Node.js")
    why = _namespaces_work()
    if why is not None:
        pytest.skip(f"Portkey listens on every interface and must run in a private network namespace: {why}")
    tmp = tmp_path_factory.mktemp("portkey")
    backend, backend_server = _backend()
    sockets = {name: str(tmp / f"{name}.sock") for name in ("clearance", "backend", "portkey")}
    # This side: Unix sockets -> Clearance and the backend on our loopback.
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    for name, port in (("clearance", clearance.server.port), ("backend", backend.port)):
        asyncio.run_coroutine_threadsafe(relay.unix_to_tcp(sockets[name], port), loop).result(10)
    command = ["unshare", "-n", sys.executable, str(Path(relay.__file__)),
               "--out", f"{clearance.server.port}={sockets['clearance']}",
               "--out", f"{backend.port}={sockets['backend']}",
               "--into", f"{sockets['portkey']}={PORTKEY_PORT}",
               "--", "node", str(PORTKEY), f"--port={PORTKEY_PORT}", "--headless"]
    log_path = tmp / "portkey.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    process = Process(popen, log_path)
    gateway = Portkey(sockets["portkey"], backend, clearance, dead_port=free_port())

    def up() -> bool:
        with httpx.Client(transport=httpx.HTTPTransport(uds=sockets["portkey"]), timeout=2) as client:
            return client.get("http://portkey/").status_code < 500

    try:
        wait_until_up(process, up, 60)
        yield gateway
    finally:
        process.stop()
        backend_server.shutdown()
        loop.call_soon_threadsafe(loop.stop)


def test_a_cleared_model_is_forwarded(portkey: Portkey) -> None:
    answer = portkey.call("gemma-4-31b")
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "served by gemma-4-31b"
    decisions = portkey.clearance.audit(gateway="portkey-main", requested_model="gemma-4-31b")
    assert decisions and decisions[-1]["app_id"] == "internal-helpdesk"


def test_a_denied_model_is_blocked_and_never_reaches_the_backend(portkey: Portkey) -> None:
    before = len(portkey.backend.seen)
    answer = portkey.call("deepseek-v4", config=portkey.config(webhook_query="?substitute=false"))
    assert answer.status_code == 446, answer.text  # Portkey's status for a denying guardrail
    assert len(portkey.backend.seen) == before
    decisions = portkey.clearance.audit(gateway="portkey-main", requested_model="deepseek-v4", outcome="allow")
    assert decisions  # the decision was recorded (the app has cleared routes; this one is not)


def test_a_substitute_is_served(portkey: Portkey) -> None:
    answer = portkey.call("deepseek-v4")
    assert answer.status_code == 200, answer.text
    # bonsai-8b (self-hosted, rank 1 for the helpdesk) is the best cleared route of the same provider.
    assert portkey.backend.seen[-1]["model"] == "bonsai-8b"
    assert answer.json()["choices"][0]["message"]["content"] == "served by bonsai-8b"


def test_clearance_unreachable_blocks_with_the_shipped_config(portkey: Portkey) -> None:
    before = len(portkey.backend.seen)
    answer = portkey.call("gemma-4-31b", config=portkey.config(clearance_port=portkey.dead_port))
    assert answer.status_code == 446, answer.text
    assert len(portkey.backend.seen) == before


def test_the_fail_open_traps_are_real(portkey: Portkey) -> None:
    """What docs/integrations.md warns about, shown on the real gateway: without failOnError an
    unreachable Clearance lets the call through, and /v1/responses skips the hooks entirely."""
    open_config = portkey.config(clearance_port=portkey.dead_port, fail_on_error=False)
    assert portkey.call("gemma-4-31b", config=open_config).status_code == 200
    before = len(portkey.clearance.audit(gateway="portkey-main"))
    skipped = portkey.call("deepseek-v4", path="/v1/responses")
    assert portkey.backend.seen[-1]["path"].endswith("/responses") and portkey.backend.seen[-1]["model"] == "deepseek-v4"
    assert skipped.status_code < 500
    assert len(portkey.clearance.audit(gateway="portkey-main")) == before  # no check ran


def test_a_stranger_is_refused(portkey: Portkey) -> None:
    answer = portkey.call("gemma-4-31b", metadata={"team": "marketing"})
    assert answer.status_code == 446, answer.text
