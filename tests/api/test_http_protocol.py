"""api/http_protocol.py: a response's writes of one loop turn reach the socket as one write,
in order, and nothing is lost on close — through a real `clearance serve` and on a real
socket transport."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx

from api.http_protocol import _CoalescingTransport
from tests.api.servers import serve_env, serving, wait_until


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[bytes, dict[str, str], bytes]:
    """One HTTP/1.1 response (Content-Length framed) from ``sock``; what follows stays in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the headers"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers["content-length"])
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        body += chunk
    buffer[:] = body[length:]
    return status.encode(), headers, bytes(body[:length])


def test_a_real_server_answers_pipelined_large_and_closing_requests_whole(migrated_database: str,
                                                                         tmp_path: Path) -> None:
    env = serve_env(migrated_database, tmp_path)
    with serving(env, "--workers", "1") as (_, base):
        wait_until(lambda: _ready(base), 60, "the server did not start")
        port = int(base.rsplit(":", 1)[1])
        openapi = httpx.get(f"{base}/openapi.json", timeout=10).content
        assert len(openapi) > 64 * 1024  # larger than the transport's write buffer limit

        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            # Three requests in one segment: three answers, in order, each whole.
            request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            sock.sendall(request * 2 + b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            buffer = bytearray()
            for _ in range(2):
                status, _, body = _read_response(sock, buffer)
                assert status.startswith(b"HTTP/1.1 200") and json.loads(body) == {"status": "ok"}
            status, _, body = _read_response(sock, buffer)
            assert status.startswith(b"HTTP/1.1 200") and body == openapi
            # An error answer (no key) and a closing one: written whole before the close.
            sock.sendall(b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
                         b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, body = _read_response(sock, buffer)
            assert status.startswith(b"HTTP/1.1 401") and json.loads(body)["error"]["code"]
            status, headers, body = _read_response(sock, buffer)
            assert status.startswith(b"HTTP/1.1 200") and headers["connection"] == "close"
            assert sock.recv(1) == b"" and not buffer  # then the server closed it


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class _Counted(asyncio.Protocol):
    """The server side's protocol: nothing to do but exist."""


def _writes_through(steps: Any) -> tuple[list[bytes], bytes, bool]:
    """Run ``steps(wrapper, loop)`` on a real socket transport wrapped in _CoalescingTransport;
    (each write the real transport got, what the peer received, whether the peer saw EOF)."""

    async def run() -> tuple[list[bytes], bytes, bool]:
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        transport, _ = await loop.create_connection(_Counted, sock=ours)
        writes: list[bytes] = []
        real_write = transport.write

        def write(data: bytes) -> None:  # what the wrapper hands the real transport, call by call
            writes.append(bytes(data))
            real_write(data)

        transport.write = write  # type: ignore[method-assign]
        wrapper = _CoalescingTransport(transport, loop)
        await steps(wrapper, loop)
        await asyncio.sleep(0.05)
        peer.setblocking(False)
        received, eof = bytearray(), False
        try:
            while chunk := peer.recv(65536):
                received += chunk
            eof = True
        except BlockingIOError:
            pass
        transport.abort()
        peer.close()
        return writes, bytes(received), eof

    return asyncio.run(run())


def test_writes_of_one_turn_are_one_write_and_later_turns_their_own() -> None:
    async def steps(wrapper: _CoalescingTransport, loop: asyncio.AbstractEventLoop) -> None:
        wrapper.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        wrapper.write(b"ok")
        await asyncio.sleep(0)  # the loop turns: the held writes go out
        await asyncio.sleep(0)
        wrapper.write(b"next")

    writes, received, eof = _writes_through(steps)
    assert writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", b"next"]
    assert received == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\noknext" and not eof


def test_a_close_sends_what_is_held_first_and_an_abort_drops_it() -> None:
    async def close(wrapper: _CoalescingTransport, loop: asyncio.AbstractEventLoop) -> None:
        wrapper.write(b"last ")
        wrapper.write(b"words")
        wrapper.close()

    writes, received, eof = _writes_through(close)
    assert writes == [b"last words"] and received == b"last words" and eof

    async def abort(wrapper: _CoalescingTransport, loop: asyncio.AbstractEventLoop) -> None:
        wrapper.write(b"dropped")
        wrapper.abort()

    writes, received, _ = _writes_through(abort)
    assert writes == [] and received == b""
