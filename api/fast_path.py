"""``POST /v1/decisions`` served without the HTTP machinery around a FastAPI route.

Why: the endpoint is the hot one, and more than half of the event loop's CPU per audited
decision went to the stack around it rather than to the decision (docs/performance.md, "The
audited path on the v2 log"): Starlette's error and exception middlewares, FastAPI's
``AsyncExitStackMiddleware``, routing over every route, ``APIRoute``'s request handler and
``solve_dependencies`` (even with no dependency declared), the pure-ASGI middlewares
``RepeatedParams`` and ``BodyLimit``, and the building of a ``Response``.

What: :class:`FastDecisions` sits outermost (``api/app.py`` wraps the app's middleware stack
with it). A request whose method is POST and whose route path is exactly ``/v1/decisions`` is
answered here; everything else (a trailing slash, which the router redirects; GET or HEAD,
which it answers 405; lifespan) goes on to the FastAPI app unchanged. The route stays
registered: OpenAPI documents it, and ``create_app(fast_decisions=False)`` serves through it.

The same behaviour, not a copy of it:

- the endpoint is ``api.routers.decisions.decide``, which the route calls too;
- every error is rendered by ``api.errors.response_for``, the table the route's exception
  handlers are built from: the same status, headers and bytes;
- the body limit is ``api.body_limit``'s: 413 for a Content-Length over the limit before
  anything else, and for a streamed body once it passes the limit (``BodyTooLarge`` raised
  while the body is read, so nothing is decided from a truncated body);
- the body is read only after the key is checked, as the route reads it: a server's
  ``Expect: 100-continue`` answer (uvicorn sends it at the first ``receive``) and a 401 before
  any body is read are the same; a chunked body arrives as several ``http.request`` messages,
  counted against the limit; ``http.disconnect`` mid-body is Starlette's ``ClientDisconnect``,
  answered (and logged) as the route's unexpected errors are;
- ``RepeatedParams`` never refuses this endpoint (it declares no query parameter), so it is
  not consulted; there are no HTTP metrics or request logging in the app to keep (uvicorn's
  access log sits outside the app, redaction works on every log record: ``api/redact.py``).

An unexpected exception is answered 500 with the handlers' body and logged with its
traceback (the route also re-raises it to the server, which logs it once more; here it stops).
"""

from __future__ import annotations

from starlette._utils import get_route_path  # the path the router matches (root_path removed)
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.body_limit import CountedBody, declared_over
from api.errors import BodyTooLarge, response_for
from api.routers.decisions import decide

PATH = "/v1/decisions"
_JSON = (b"content-type", b"application/json")


class FastDecisions:
    """ASGI layer answering ``POST /v1/decisions`` itself; the rest goes on to ``app``.

    :param limit: the largest request body, in bytes (``Settings.max_body_bytes``).
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or get_route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        try:
            if declared_over(scope, self.limit):
                raise BodyTooLarge(self.limit)
            # ``scope["app"]`` (the services, ``api.deps.services_of``) is set by the app's own
            # __call__, which runs before its middleware stack, this layer included.
            answer = await decide(Request(scope, CountedBody(receive, self.limit)))
        except Exception as exc:  # noqa: BLE001 - every error is answered as the route answers it
            response = response_for(exc)
            await _send(send, response.status_code, response.raw_headers, response.body)
            return
        # The JSON of a decision whose audit entry is committed (decide_json returns only then).
        await _send(send, 200, [(b"content-length", str(len(answer)).encode()), _JSON], answer)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
