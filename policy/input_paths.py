"""The parts of the policy input a pack's rules can read, found in its syntax tree.

The service's input carries more than the reference pack reads (the app's description, owner and
profile, the request as it was asked, the caller), and the VM parses all of it on every
evaluation. A rule can only reach the input through the ``input`` keyword, so every reference to
it in the pack's modules, followed as far as its path is spelled statically (``input.app.id``,
``input["workload"]``), bounds what an evaluation can read: the VM is handed the input cut to
those paths, whole below each one. An ``input`` that stands alone or is indexed by a variable
at the top (``x := input``, ``object.get(input, …)``, ``input[k]``) keeps the input whole, and
so does any ``with`` modifier (it rewrites what a reference sees). The audit trail records the
whole input, as before; only what the VM parses is cut.
"""

from __future__ import annotations

from typing import Any

import orjson
import regorus

# A trie of the paths read: key -> the paths below it; WHOLE where everything below is kept.
Paths = dict[str, Any]
WHOLE: Paths = {}
_REFS = ("RefDot", "RefBrack")
_STRINGS = ("String", "RawString")


class _Unbounded(Exception):
    """The pack may read any part of the input."""


def read_paths(modules: list[tuple[str, str]]) -> Paths | None:
    """The input paths ``modules`` can read, or ``None`` when they may read any of it (or the
    syntax tree is not what this module knows: nothing is cut then)."""
    engine = regorus.Engine()
    try:
        for name, text in modules:
            engine.add_policy(name, text)
        trees = orjson.loads(engine.get_ast_as_json())
        found: list[list[str]] = []
        for module in trees:
            _visit(module["ast"], found)
        return _trie(found)
    except (_Unbounded, RuntimeError, KeyError, TypeError, IndexError):
        return None


def pruned(policy_input: dict[str, Any], paths: Paths | None) -> dict[str, Any]:
    """``policy_input`` with only ``paths`` (whole when ``None``)."""
    return policy_input if paths is None else _cut(policy_input, paths)


def _cut(value: Any, paths: Paths) -> Any:
    if not isinstance(value, dict):
        return value
    # A part kept whole is taken as it is, without a call (most of the paths end there).
    return {key: value[key] if below is WHOLE else _cut(value[key], below)
            for key, below in paths.items() if key in value}


def _trie(found: list[list[str]]) -> Paths:
    """The paths as a trie; a path that another one extends keeps everything below it."""
    if any(not path for path in found):
        raise _Unbounded
    root: Paths = {}
    for path in sorted(found, key=len):  # shorter first: a kept prefix absorbs the longer ones
        node = root
        for i, key in enumerate(path):
            last = i == len(path) - 1
            below = node.get(key)
            if below is WHOLE:
                break
            if last:
                node[key] = WHOLE
            else:
                node = node.setdefault(key, {})
    return root


def _visit(node: Any, found: list[list[str]]) -> None:
    if isinstance(node, list):
        for item in node:
            _visit(item, found)
        return
    if not isinstance(node, dict):
        return
    if node.get("with_mods"):
        raise _Unbounded
    if len(node) == 1:
        (kind, body), = node.items()
        if kind in _REFS:
            _reference(node, found)
            return
        if kind == "Var" and body.get("value") == "input":
            raise _Unbounded  # input alone
    for value in node.values():
        _visit(value, found)


def _reference(node: dict[str, Any], found: list[list[str]]) -> None:
    """A reference chain (``a.b[c].d``): its path when it starts at ``input``; the expressions in
    its brackets are visited either way."""
    segments: list[str | None] = []  # innermost last; None for an index that is not a string
    while len(node) == 1 and next(iter(node)) in _REFS:
        kind, body = next(iter(node.items()))
        if kind == "RefDot":
            segments.append(body["field"][1])
        else:
            index = body["index"]
            kind_of_index = next(iter(index)) if isinstance(index, dict) and len(index) == 1 else None
            segments.append(index[kind_of_index]["value"] if kind_of_index in _STRINGS else None)
            _visit(index, found)
        node = body["refr"]
    base = node.get("Var", {}).get("value") if len(node) == 1 else None
    if base != "input":
        _visit(node, found)
        return
    path: list[str] = []
    for segment in reversed(segments):
        if not isinstance(segment, str):
            break
        path.append(segment)
    found.append(path)  # empty: indexed by a variable at the top, the whole input
