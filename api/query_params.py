"""Repeated query parameters: a list where the API documents one, else 422 naming the parameter.

Left to themselves, FastAPI and Starlette keep one of the values of a single-valued parameter
given twice (``outcome=allow&outcome=deny``) and drop the other without a word. This
middleware answers 422 instead, for every endpoint: a parameter the OpenAPI document declares as
an array (``group_by``) may repeat; any other declared query parameter given more than once is
refused before the endpoint runs. Parameters an endpoint does not declare are not its concern.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import FieldError, error_response


def _is_array(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_is_array(s) for s in schema.get("anyOf", ()))


Operation = tuple[str, re.Pattern[str], frozenset[str]]


def single_valued(document: dict[str, Any]) -> list[Operation]:
    """Each operation of the OpenAPI ``document``: its method, a pattern of its path and the
    names of its query parameters that take one value."""
    table: list[Operation] = []
    for path, item in document.get("paths", {}).items():
        pattern = compile_path(path)[0]
        for method, operation in item.items():
            if isinstance(operation, dict):
                table.append((method.upper(), pattern, frozenset(
                    p["name"] for p in operation.get("parameters", ())
                    if p.get("in") == "query" and not _is_array(p.get("schema", {})))))
    return table


class RepeatedParams:
    """ASGI middleware refusing a single-valued query parameter given more than once (422).

    :param api: the application whose OpenAPI document says which parameters are lists.
    """

    def __init__(self, app: ASGIApp, *, api: FastAPI) -> None:
        self.app, self.api = app, api
        self._table: list[Operation] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            repeated = self._repeated(scope)
            if repeated:
                name, times = repeated
                reason = f"given {times} times; it takes one value"
                response = error_response(422, "invalid_request", f"query parameter {name!r} is {reason}",
                                          [FieldError(field=name, reason=reason)])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _repeated(self, scope: Scope) -> tuple[str, int] | None:
        query = scope["query_string"].decode("latin-1")  # as Starlette decodes it
        counts = Counter(name for name, _ in parse_qsl(query, keep_blank_values=True))
        if all(times == 1 for times in counts.values()):
            return None  # the usual case: nothing to look up
        single = self._single_valued(scope["method"], scope["path"])
        return next(((name, times) for name, times in counts.items() if times > 1 and name in single), None)

    def _single_valued(self, method: str, path: str) -> frozenset[str]:
        if self._table is None:
            self._table = single_valued(self.api.openapi())
        return next((names for m, pattern, names in self._table if m == method and pattern.match(path)),
                    frozenset())
