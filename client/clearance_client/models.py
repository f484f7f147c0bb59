"""The decision as the API returns it: frozen dataclasses read strictly from the JSON.

A ``Decision`` keeps the JSON object exactly as received (``raw``): the receipt check hashes
that, not a re-serialisation of these dataclasses, so members this client does not know about
are still covered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from clearance_client.errors import UnexpectedResponse


class ReceiptJSON(TypedDict):
    """The ``audit`` member of a decision: a transparency-log receipt."""

    seq: int
    leaf_hash: str
    recorded_at: str
    entry: dict[str, Any]
    checkpoint: str
    inclusion_proof: list[str]


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class ClearedRoute:
    """A route (one model through one deployment) the decision cleared, with its rank (1 = best)."""

    model: str
    deployment: str
    rank: int
    price_per_mtok: float | None = None
    obligations: tuple[str, ...] = ()
    provenance: str | None = None

    @property
    def route(self) -> tuple[str, str]:
        return (self.model, self.deployment)


@dataclass(frozen=True)
class DeniedRoute:
    """A route the decision did not clear, with every reason that applies."""

    model: str
    deployment: str
    reasons: tuple[Reason, ...]

    @property
    def route(self) -> tuple[str, str]:
        return (self.model, self.deployment)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)


@dataclass(frozen=True)
class Decision:
    decision_id: str
    outcome: Literal["allow", "deny"]
    allowed: tuple[ClearedRoute, ...]
    denied: tuple[DeniedRoute, ...]
    policy_revision: str
    audit: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def is_allowed(self) -> bool:
        """True when at least one route is cleared."""
        return self.outcome == "allow" and bool(self.allowed)

    def cleared(self, model: str, deployment: str | None = None) -> list[ClearedRoute]:
        """The cleared routes of ``model`` (through ``deployment`` when given), best first.

        A route the decision lists as both cleared and denied counts as denied.
        """
        denied = {d.route for d in self.denied}
        return sorted((r for r in self.allowed
                       if r.model == model and (deployment is None or r.deployment == deployment)
                       and r.route not in denied), key=lambda r: r.rank)

    def denials(self, model: str, deployment: str | None = None) -> list[DeniedRoute]:
        """The denied routes of ``model`` (through ``deployment`` when given)."""
        return [d for d in self.denied if d.model == model and (deployment is None or d.deployment == deployment)]

    def result(self) -> dict[str, Any]:
        """The decision's result as the audit entry hashes it: the response without
        ``decision_id`` (kept in the entry body) and without ``audit`` (the receipt itself)."""
        return {k: v for k, v in self.raw.items() if k not in ("decision_id", "audit")}

    @classmethod
    def from_json(cls, data: Any) -> Decision:
        """Read a decision object strictly; UnexpectedResponse names the first bad member."""
        obj = _object(data, "decision")
        outcome = _str(obj, "outcome", "decision")
        if outcome not in ("allow", "deny"):
            raise UnexpectedResponse(f"decision.outcome is {outcome!r}, not 'allow' or 'deny'")
        allowed = tuple(_cleared(item, f"decision.allowed[{i}]")
                        for i, item in enumerate(_list(obj, "allowed", "decision")))
        denied = tuple(_denied(item, f"decision.denied[{i}]")
                       for i, item in enumerate(_list(obj, "denied", "decision")))
        if outcome == "allow" and not allowed:
            raise UnexpectedResponse("decision.outcome is 'allow' but no route is cleared")
        if outcome == "deny" and allowed:
            raise UnexpectedResponse("decision.outcome is 'deny' but routes are listed as cleared")
        audit = obj.get("audit")
        if audit is not None and not isinstance(audit, Mapping):
            raise UnexpectedResponse("decision.audit is not an object")
        return cls(
            decision_id=_str(obj, "decision_id", "decision"),
            outcome=outcome,  # type: ignore[arg-type]  # checked above
            allowed=allowed,
            denied=denied,
            policy_revision=_str(obj, "policy_revision", "decision"),
            audit=audit,
            raw=obj,
        )


def loads_strict(body: bytes) -> Any:
    """Parse JSON, refusing duplicate object keys (they would make hashes ambiguous)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise UnexpectedResponse(f"the JSON object has the member {key!r} twice")
            out[key] = value
        return out

    def no_constant(name: str) -> Any:
        raise UnexpectedResponse(f"the JSON holds {name}, which is not a JSON number")

    try:
        return json.loads(body, object_pairs_hook=pairs, parse_constant=no_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, UnexpectedResponse):
            raise
        raise UnexpectedResponse(f"the body is not JSON: {exc}") from exc


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UnexpectedResponse(f"{where} is not a JSON object")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise UnexpectedResponse(f"{where}.{key} is missing or not a string")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        raise UnexpectedResponse(f"{where}.{key} is missing or not an array")
    return value


def _cleared(value: Any, where: str) -> ClearedRoute:
    obj = _object(value, where)
    rank = obj.get("rank")
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise UnexpectedResponse(f"{where}.rank is missing or not an integer")
    price = obj.get("price_per_mtok")
    if price is not None and (not isinstance(price, (int, float)) or isinstance(price, bool)):
        raise UnexpectedResponse(f"{where}.price_per_mtok is not a number")
    obligations = obj.get("obligations", [])
    if not isinstance(obligations, list) or not all(isinstance(o, str) for o in obligations):
        raise UnexpectedResponse(f"{where}.obligations is not an array of strings")
    provenance = obj.get("provenance")
    if provenance is not None and not isinstance(provenance, str):
        raise UnexpectedResponse(f"{where}.provenance is not a string")
    return ClearedRoute(
        model=_str(obj, "model", where),
        deployment=_str(obj, "deployment", where),
        rank=rank,
        price_per_mtok=None if price is None else float(price),
        obligations=tuple(obligations),
        provenance=provenance,
    )


def _denied(value: Any, where: str) -> DeniedRoute:
    obj = _object(value, where)
    reasons = []
    for i, item in enumerate(_list(obj, "reasons", where)):
        r = _object(item, f"{where}.reasons[{i}]")
        reasons.append(Reason(_str(r, "code", f"{where}.reasons[{i}]"), _str(r, "message", f"{where}.reasons[{i}]")))
    return DeniedRoute(model=_str(obj, "model", where), deployment=_str(obj, "deployment", where),
                       reasons=tuple(reasons))
