"""Request bodies over ``Settings.max_body_bytes`` refused with 413 before anything parses them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors


def declared_over(scope: Scope, limit: int) -> bool:
    """Whether the request's Content-Length is not a number or exceeds ``limit`` (the last of
    repeated headers counts). A body without one is counted as it streams in."""
    declared = dict(scope.get("headers") or []).get(b"content-length")
    return declared is not None and (not declared.isdigit() or int(declared) > limit)


async def refuse(send: Send, limit: int) -> None:
    """Answer 413 ``body_too_large``, as the error handlers render ``BodyTooLarge``."""
    response = errors.response_for(errors.BodyTooLarge(limit))
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class CountedBody:
    """``receive`` raising :class:`~api.errors.BodyTooLarge` to whatever reads the body once
    more than ``limit`` bytes of it came in, so nothing runs on the part read so far (a whole
    JSON object followed by spaces past the limit would parse, and a recording endpoint would
    record it). ``over``: whether it did. ``BodyLimit`` and the fast path of ``POST
    /v1/decisions`` both read bodies through it."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive, self._limit = receive, limit
        self._seen = 0
        self.over = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                self.over = True
                raise errors.BodyTooLarge(self._limit)
        return message


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before anything parses them."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_over(scope, self.limit):
            await refuse(send, self.limit)
            return
        counted = CountedBody(receive, self.limit)
        started = False

        async def guarded_send(message: Message) -> None:
            # The 413 replaces whatever the app answers once the body passed the limit (FastAPI
            # turns an error while it reads a declared body parameter into a 400).
            nonlocal started
            if counted.over:
                if not started:
                    started = True
                    await refuse(send, self.limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, guarded_send)
