"""TEST-ONLY HTTP servers on loopback: a stub of Clearance's decision endpoint (decisions with
receipts from tlog_factory) and a mock OpenAI backend (JSON and server-sent-event streams) that
records every request that reaches it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tlog_factory import TestLog, decision_json


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.requests: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    @property
    def owner(self) -> Any:
        return self.server.owner  # type: ignore[attr-defined]

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def send_json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("connection", "close")  # a stopped server must not answer on a kept-alive connection
        self.close_connection = True
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


class StubClearance(_Server):
    """POST /v1/decisions answers ``decision_for(body)`` with a receipt, or what a test sets:
    ``status``/``payload`` for an error, ``delay`` seconds before answering, ``raw`` bytes."""

    def __init__(self) -> None:
        self.log = TestLog()
        self.decision_for: Callable[[dict[str, Any]], dict[str, Any]] = lambda body: decision_json()
        self.tamper: Callable[[dict[str, Any]], None] | None = None
        self.status: int | None = None
        self.payload: Any = None
        self.headers: dict[str, str] = {}
        self.delay = 0.0
        super().__init__(_ClearanceHandler)

    @property
    def decisions(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/v1/decisions"]


class _ClearanceHandler(_Handler):
    def do_POST(self) -> None:
        stub: StubClearance = self.owner
        body = json.loads(self.body() or b"null")
        stub.requests.append({"path": self.path, "body": body, "authorization": self.headers.get("authorization")})
        if stub.delay:
            time.sleep(stub.delay)
        if self.path != "/v1/decisions":
            return self.send_json(404, {"error": {"code": "not_found", "message": "no such route", "fields": []}})
        if stub.status is not None:
            return self.send_json(stub.status, stub.payload, stub.headers)
        decision = stub.log.decide(stub.decision_for(body), app_id=body.get("app_id", "?"))
        if stub.tamper:
            stub.tamper(decision)
        self.send_json(200, decision)


class MockOpenAI(_Server):
    """Just enough of the OpenAI API for the SDK: chat completions, completions, responses,
    embeddings, audio transcriptions and the model list; ``stream: true`` answers with SSE."""

    def __init__(self) -> None:
        super().__init__(_OpenAIHandler)

    @property
    def models_served(self) -> list[str]:
        return [r["model"] for r in self.requests if r.get("model")]


class _OpenAIHandler(_Handler):
    def do_GET(self) -> None:
        self.owner.requests.append({"method": "GET", "path": self.path, "model": None,
                                    "headers": dict(self.headers)})
        self.send_json(200, {"object": "list", "data": [
            {"id": "gpt-5-mini", "object": "model", "created": 0, "owned_by": "test"}]})

    def do_POST(self) -> None:
        raw = self.body()
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            body = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                    for p in msg.iter_parts()}
            body = {k: (v.decode() if k == "model" else v) for k, v in body.items()}
        else:
            body = json.loads(raw or b"{}")
        model = body.get("model")
        self.owner.requests.append({"method": "POST", "path": self.path, "model": model, "body": body,
                                    "headers": dict(self.headers)})
        path = self.path.split("?")[0]
        if path.endswith("/chat/completions"):
            return self._chat(model, body.get("stream", False))
        if path.endswith("/responses"):
            return self._responses(model, body.get("stream", False))
        if path.endswith("/completions"):
            return self.send_json(200, {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": model,
                                        "choices": [{"text": "ok", "index": 0, "finish_reason": "stop",
                                                     "logprobs": None}]})
        if path.endswith("/embeddings"):
            return self.send_json(200, {"object": "list", "model": model, "data": [
                {"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        if path.endswith("/audio/transcriptions"):
            return self.send_json(200, {"text": f"transcribed by {model}"})
        self.send_json(200, {"ok": True})

    def _sse(self, events: list[tuple[str | None, Any]]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        self.close_connection = True
        self.end_headers()
        for name, data in events:
            text = (f"event: {name}\n" if name else "") + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
            chunk = text.encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _chat(self, model: str, stream: bool) -> None:
        words = ["hello", " from", f" {model}"]
        if not stream:
            return self.send_json(200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "".join(words)}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model}
        events: list[tuple[str | None, Any]] = [
            (None, {**chunk, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}) for w in words]
        events += [(None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}), (None, "[DONE]")]
        self._sse(events)

    def _responses(self, model: str, stream: bool) -> None:
        text = f"hi from {model}"
        response = {"id": "resp_1", "object": "response", "created_at": 0, "model": model, "status": "completed",
                    "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                                "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                    "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
        if not stream:
            return self.send_json(200, response)
        self._sse([
            ("response.created", {"type": "response.created", "sequence_number": 0,
                                  "response": {**response, "status": "in_progress", "output": []}}),
            ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 1,
                                            "item_id": "msg_1", "output_index": 0, "content_index": 0,
                                            "delta": text, "logprobs": []}),
            ("response.completed", {"type": "response.completed", "sequence_number": 2, "response": response}),
        ])
