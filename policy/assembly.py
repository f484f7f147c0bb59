"""The decision assembled in Python from the pack's tables, exactly as rego/main.rego assembles it.

main.rego's ``decision`` is a change of shape: the concern modules' ``denials`` and
``obligations`` (``{"workload", "model", "route"}`` levels), the cleared routes' ranking keys
best first (``ordered``) and the catalog's routes in order (``deployments``) become the lists of
the contract (a model's reasons, a route's reasons, each sorted by code; each allowed route's
obligations, sorted). On regorus' RVM that assembly is about half of an evaluation's
instructions (docs/performance.md, "The decision assembled in Python"), while Python does it in
a fraction. So when the pack's package ``clearance`` is exactly the main.rego this module was
written against (:data:`PINNED_MAIN`, its SHA-256), the embedded engine evaluates only
``data.clearance.assembly`` (the four tables) and :func:`assembled` builds the decision.

Every other pack (a main.rego edited under review, a pack of one's own, a second module of
package ``clearance``, a data document that adds to ``data.clearance``) is evaluated as
``data.clearance.decision`` by the VM, as OPA and the rego tests always evaluate it; so is any
answer whose tables are not of the expected types (then Rego's rules decide what they make of
it). The two paths give the same JSON, byte for byte: tests/policy/test_assembly.py compares
them on the reference catalog, on synthetic ones and on random inputs, and pins the digest to
rego/main.rego so that editing main.rego means editing this module and re-running that test.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

ASSEMBLY_RULE = "data.clearance.assembly"
# SHA-256 of the rego/main.rego whose assembly :func:`assembled` repeats.
PINNED_MAIN = "ad87dbb11dc6177c5f744bc2099c255e5e93a86db15d9e78589b0c52d8757fef"
# main.rego's rules: a module of package clearance.<one of these> would add to them.
_MAIN_RULES = frozenset({"assembly", "denials", "obligations", "model_found", "model_reasons", "route_reasons",
                         "denied", "cleared", "ordered", "allowed", "outcome", "decision", "part"})
_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([\w.\"\[\]]+)", re.MULTILINE)


def applies(modules: list[tuple[str, str]], document: dict[str, Any]) -> bool:
    """Whether a pack's decision may be assembled here: its one module of package ``clearance``
    is the pinned main.rego, no other module's package lies under one of main.rego's rules, and
    the data document has no ``clearance`` root of its own."""
    return refusal(modules, document) is None


def refusal(modules: list[tuple[str, str]], document: dict[str, Any]) -> str | None:
    """Why a pack's decision is not assembled here (``clearance policy check`` says it), or None
    when it is (:func:`applies`)."""
    if "clearance" in document:
        return "the data document has a clearance root of its own"
    mains = []
    for name, text in modules:
        package = _package(text)
        if package == "clearance":
            mains.append((name, text))
        elif package.startswith("clearance.") and package.split(".")[1] in _MAIN_RULES:
            return f"{name} (package {package}) adds to one of main.rego's rules"
    if len(mains) != 1:
        return f"{len(mains)} modules of package clearance, not one"
    name, text = mains[0]
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest != PINNED_MAIN:
        return (f"{name} is not the text policy/assembly.py pins (sha256 {digest[:12]}…, pinned "
                f"{PINNED_MAIN[:12]}…)")
    return None


def _package(text: str) -> str:
    found = _PACKAGE.search(text)
    package = found.group(1) if found else ""
    return package.removeprefix("data.")


class _Levels(msgspec.Struct, forbid_unknown_fields=True):
    """``denials`` or ``obligations``: ``{CODE or NAME: text}`` at each level."""

    workload: dict[str, str]
    model: dict[str, dict[str, str]]
    route: dict[str, dict[str, dict[str, str]]]


class _Tables(msgspec.Struct, forbid_unknown_fields=True):
    denials: _Levels
    obligations: _Levels
    # [strength key, price, model id, deployment id, provenance] (ranking.rego), best first.
    ordered: list[tuple[Any, float, str, str, str]]
    # [model id, [deployment id, …]] for every model, in the catalog's order (ranking.rego).
    deployments: list[tuple[str, list[str]]]


_TABLES = msgspec.json.Decoder(_Tables)


def assembled(raw: str | bytes, model_ids: list[str]) -> dict[str, Any] | None:
    """The decision main.rego assembles from the tables in ``raw`` (the VM's JSON text of
    ``data.clearance.assembly``), in the checked shape ``ActivePolicy.evaluate`` answers; ``None``
    when the tables are not what main.rego's rules expect (the VM then decides whole).

    ``model_ids``: the ids of ``data.models`` as the VM sees it, in order.
    """
    tables = _decoded(raw)
    return None if tables is None else _assembled(tables, model_ids)


def assembled_part(raw: str | bytes, model_ids: list[str]) -> dict[str, Any] | None:
    """main.rego's ``part`` (a decision on a slice of the catalog, with each allowed route's
    ranking key) from the tables in ``raw``, as :func:`assembled` does ``decision``."""
    tables = _decoded(raw)
    if tables is None:
        return None
    body = _assembled(tables, model_ids)
    return {"allowed": body["allowed"], "denied": body["denied"],
            "rank_keys": [[key[0], key[1], key[2], key[3]] for key in tables.ordered]}


def _decoded(raw: str | bytes) -> _Tables | None:
    try:
        return _TABLES.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _assembled(tables: _Tables, model_ids: list[str]) -> dict[str, Any]:
    denials = tables.denials
    workload, by_model, by_route = denials.workload, denials.model, denials.route
    # model_found: a model's reasons for all its routes (the workload's, then its own).
    found = {m: {**workload, **by_model.get(m, {})} for m in model_ids} if workload else by_model
    model_reasons = {m: _codes(reasons) for m, reasons in found.items()}
    # denied: the catalog's routes in order, each with its own reasons merged with its model's,
    # else its model's; a route with neither is cleared.
    denied = []
    for mid, deployments in tables.deployments:
        model_level = model_reasons.get(mid)
        own = by_route.get(mid, {})
        for did in deployments:
            route_level = own.get(did)
            if route_level is not None:
                codes = _codes({**found.get(mid, {}), **route_level})
            elif model_level is not None:
                codes = model_level
            else:
                continue
            denied.append({"model": mid, "deployment": did,
                           "reasons": [{"code": code, "message": message} for code, message in codes]})
    obligations = tables.obligations
    everywhere = list(obligations.workload.values())
    allowed = [
        {"model": mid, "deployment": did, "rank": rank, "price_per_mtok": price, "provenance": provenance,
         "obligations": sorted([*everywhere, *obligations.model.get(mid, {}).values(),
                                *obligations.route.get(mid, {}).get(did, {}).values()])}
        for rank, (_, price, mid, did, provenance) in enumerate(tables.ordered, start=1)
    ]
    return {"outcome": "allow" if allowed else "deny", "allowed": allowed, "denied": denied}


def _codes(reasons: dict[str, str]) -> list[tuple[str, str]]:
    """``{CODE: message}`` as (code, message) pairs sorted by code (Rego's ``sort`` of strings
    and Python's ``sorted`` both order by code point)."""
    return sorted(reasons.items())
