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
        seen = 0
        too_big = False

        async def counted() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_big = True
                    # Raised to whatever reads the body, so nothing runs on the part read so far
                    # (a whole JSON object followed by spaces past the limit would parse, and a
                    # recording endpoint would record it); the 413 below replaces any answer.
                    raise errors.BodyTooLarge(self.limit)
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_big:
                if not started:
                    started = True
                    await refuse(send, self.limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, guarded_send)
