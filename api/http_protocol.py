"""uvicorn's HTTP protocol (httptools) with a response's writes made in one event-loop turn sent
as one: ``CLEARANCE_HTTP_COALESCE`` (default on).

uvicorn writes a response's status line and headers when the app sends ``http.response.start``
and the body when it sends ``http.response.body``: two ``send`` system calls and two TCP
segments per answer, which the client's side also reads one by one. An app that sends both in
one step of its task (every answer of this service: ``api/fast_path.py``, Starlette's
``Response``) has them written together by this transport: the first write of a turn is held
and a callback at the end of the same turn of the loop sends it with whatever followed
(``call_soon``: after the task's step, before the loop waits for I/O again), so nothing waits
longer than that turn. A close sends what is held first; an abort drops it, as it drops the
transport's own buffer. Flow control is the real transport's (it calls the protocol's
``pause_writing``/``resume_writing`` as before); a response larger than the transport's buffer
limits goes out as before, one write per turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol"]


class _CoalescingTransport:
    """A transport whose writes within one turn of the loop reach the socket as one write."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is None:
            self._held = [bytes(data)]
            self._loop.call_soon(self._flush)
        else:
            self._held.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
