"""Request JSON, read strictly: an object that repeats a key is refused, not read by its last value.

``{"data_classification": "restricted", "data_classification": "public"}`` means different
things to different parsers (most keep the last value, some the first); a gate must not guess.
One parse by ``jiter`` (pydantic's own JSON parser) refuses duplicates and ``NaN``/``Infinity``;
only when a duplicate is found is the body parsed again to name where it is.
"""

from __future__ import annotations

import json
from typing import Any

import jiter

from policy.errors import ClearanceError

_DUPLICATE = "Detected duplicate key"


class MalformedJson(ClearanceError):
    """The body is not JSON (or uses NaN/Infinity, or nests too deeply)."""


class DuplicateKey(ClearanceError):
    """An object in the body has the same key twice."""

    def __init__(self, path: tuple[str | int, ...], key: str) -> None:
        self.path, self.key = path, key
        where = ".".join(str(p) for p in path) or "the top-level object"
        self.field = ".".join(str(p) for p in (*path, key))
        super().__init__(f"key {key!r} appears more than once in {where}; each key may appear once")

    def diagnostics(self) -> str:
        return f"invalid request: {self}"


def loads(data: bytes | str) -> Any:
    """The parsed JSON document; raises :class:`DuplicateKey` or :class:`MalformedJson`."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        return jiter.from_json(raw, catch_duplicate_keys=True, allow_inf_nan=False)
    except ValueError as exc:
        message = str(exc)
        if message.startswith(_DUPLICATE):
            raise _locate_duplicate(raw) from None
        raise MalformedJson(message) from None


class _Pairs(list):  # type: ignore[type-arg]
    """An object as its (key, value) pairs, duplicates kept."""


def _locate_duplicate(raw: bytes) -> DuplicateKey:
    """The first repeated key, in document order, with the path of its object."""
    doc = json.loads(raw, object_pairs_hook=_Pairs)

    def walk(node: Any, path: tuple[str | int, ...]) -> DuplicateKey | None:
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for key, value in node:
                if key in seen:
                    return DuplicateKey(path, key)
                seen.add(key)
            for key, value in node:
                found = walk(value, (*path, key))
                if found is not None:
                    return found
        elif isinstance(node, list):
            for i, value in enumerate(node):
                found = walk(value, (*path, i))
                if found is not None:
                    return found
        return None

    return walk(doc, ()) or DuplicateKey((), "?")
